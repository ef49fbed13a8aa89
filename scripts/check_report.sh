#!/usr/bin/env bash
# Opens a study report (report.html) in headless Chromium (Debian package `chromium`), saves a screenshot, and
# checks from the DOM Chromium rendered that the plots are there: at least MIN_SVG <svg> elements, each holding
# drawn shapes (rect, circle, line, polyline, path or polygon), and at least one embedded image.
#   usage: scripts/check_report.sh REPORT.html SCREENSHOT.png [MIN_SVG]
# Exit 0: rendered and checked; 1: a check failed; 77: chromium is not installed (ctest reports "Skipped").
set -euo pipefail
report=${1:?usage: check_report.sh REPORT.html SCREENSHOT.png [MIN_SVG]}
shot=${2:?usage: check_report.sh REPORT.html SCREENSHOT.png [MIN_SVG]}
min_svg=${3:-4}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "check_report: chromium is not installed (apt-get install chromium); skipped"
  exit 77
fi
[ -s "$report" ] || { echo "check_report: no report at $report"; exit 1; }
url="file://$(realpath "$report")"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,4000)
timeout 120 "$browser" "${flags[@]}" --screenshot="$shot" "$url" >/dev/null 2>&1 || true
[ -s "$shot" ] || { echo "check_report: chromium wrote no screenshot"; exit 1; }
dom=$(mktemp)
trap 'rm -f "$dom"' EXIT
timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" >"$dom" 2>/dev/null || true
python3 - "$dom" "$min_svg" "$shot" <<'PY'
import sys
from html.parser import HTMLParser

dom, min_svg, shot = sys.argv[1], int(sys.argv[2]), sys.argv[3]
SHAPES = {"rect", "circle", "line", "polyline", "path", "polygon", "ellipse"}

class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.depth = 0          # inside how many <svg>
        self.svgs = []          # shapes per svg
        self.images = 0
    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.depth += 1
            if self.depth == 1:
                self.svgs.append(0)
        elif self.depth and tag in SHAPES:
            self.svgs[-1] += 1
        elif tag == "img" and dict(attrs).get("src", "").startswith("data:image/png;base64,"):
            self.images += 1
    def handle_endtag(self, tag):
        if tag == "svg" and self.depth:
            self.depth -= 1

p = P()
p.feed(open(dom, encoding="utf-8", errors="replace").read())
empty = sum(1 for n in p.svgs if n == 0)
print(f"check_report: {len(p.svgs)} svg plots ({empty} empty), {sum(p.svgs)} shapes, {p.images} embedded images; "
      f"screenshot {shot}")
ok = len(p.svgs) >= min_svg and empty == 0 and p.images > 0
sys.exit(0 if ok else 1)
PY
