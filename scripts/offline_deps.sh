#!/usr/bin/env bash
# Build dependencies for a machine without a package registry (the GPU machines, locked-down hospital clusters).
#   scripts/offline_deps.sh download [DIR]   on a machine WITH apt: fetch the Debian packages cxr builds with into
#                                            DIR (default .deb, ignored by git) — nothing is installed.
#   scripts/offline_deps.sh unpack [DIR] [PREFIX]
#                                            on the offline machine: unpack them with dpkg -x into PREFIX (default
#                                            /tmp/cxr-deps), find cuDNN (the system's, $CUDNN_ROOT, or the one inside
#                                            PyTorch's nvidia-cudnn wheel) and write PREFIX/env.sh, which exports
#                                            CMAKE_FLAGS, CUDNN_ROOT, LD_LIBRARY_PATH and CXR_SKIP_DEPS=1 for `make`.
# Typical use: `source <(scripts/offline_deps.sh unpack .deb /tmp/cxr-deps >/dev/null; cat /tmp/cxr-deps/env.sh)`,
# or simply `make gpu-check`, which does this by itself when a .deb folder is present and packages are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(libstb-dev libstb0 nlohmann-json3-dev catch2 zlib1g-dev zlib1g)

case "${1:-}" in
download)
  dir=${2:-.deb}
  mkdir -p "$dir"
  (cd "$dir" && apt-get download "${packages[@]}")
  ls -l "$dir"
  ;;
unpack)
  dir=${2:-.deb}
  prefix=${3:-/tmp/cxr-deps}
  ls "$dir"/*.deb >/dev/null 2>&1 || { echo "offline_deps: no .deb files in $dir" >&2; exit 1; }
  mkdir -p "$prefix"
  for f in "$dir"/*.deb; do dpkg -x "$f" "$prefix"; done
  # Absolute links (zlib1g-dev's libz.so -> /lib/...) would point at the host's files: point them into the prefix.
  find "$prefix" -type l | while read -r link; do
    target=$(readlink "$link")
    case "$target" in /*) [ -e "$prefix$target" ] && ln -sfn "$prefix$target" "$link" ;; esac
  done
  # cuDNN: the system's when the compiler can see it, else CUDNN_ROOT, else PyTorch's wheel (nvidia/cudnn), whose
  # library has only a versioned name (libcudnn.so.9): an unversioned link is made for the linker.
  cudnn_root=${CUDNN_ROOT:-}
  if [ -z "$cudnn_root" ] && ! { ldconfig -p 2>/dev/null | grep -q 'libcudnn\.so ' && [ -e /usr/include/cudnn.h ]; }; then
    for py in python3 /opt/torch/.venv/bin/python3; do
      site=$("$py" -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__) if nvidia.cudnn.__file__ else list(nvidia.cudnn.__path__)[0])' 2>/dev/null) || continue
      if [ -e "$site/include/cudnn.h" ]; then
        mkdir -p "$prefix/cudnn/lib"
        ln -sfn "$site/include" "$prefix/cudnn/include"
        for so in "$site"/lib/libcudnn*.so.*; do ln -sf "$so" "$prefix/cudnn/lib/"; done
        lib=$(ls "$site"/lib/libcudnn.so.* | head -n 1)
        ln -sf "$lib" "$prefix/cudnn/lib/libcudnn.so"
        cudnn_root="$prefix/cudnn"
        break
      fi
    done
  fi
  arch_lib="$prefix/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
  {
    echo "export CXR_SKIP_DEPS=1"
    echo "export CMAKE_FLAGS=\"-DCMAKE_PREFIX_PATH=$prefix/usr ${CMAKE_FLAGS:-}\""
    echo "export LD_LIBRARY_PATH=\"$arch_lib${cudnn_root:+:$cudnn_root/lib}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
    [ -n "$cudnn_root" ] && echo "export CUDNN_ROOT=\"$cudnn_root\""
  } >"$prefix/env.sh"
  echo "offline_deps: unpacked $(ls "$dir"/*.deb | wc -l) packages into $prefix; cuDNN: ${cudnn_root:-system}"
  cat "$prefix/env.sh"
  ;;
*)
  sed -n '2,11p' "$0" >&2
  exit 2
  ;;
esac
