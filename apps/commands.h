// The cxr subcommands. Each takes the arguments after its name and returns the process exit code.
#pragma once

namespace cxr::apps {

int cmd_demo(int argc, char** argv);
int cmd_backends(int argc, char** argv);
int cmd_version(int argc, char** argv);
int cmd_evaluate(int argc, char** argv);
int cmd_data(int argc, char** argv);
int cmd_phantom(int argc, char** argv);
int cmd_train_classifier(int argc, char** argv);
int cmd_study(int argc, char** argv);
int cmd_image_metrics(int argc, char** argv);
int cmd_fid(int argc, char** argv);        // apps/cmd_image_metrics.cpp
int cmd_msssim(int argc, char** argv);     // apps/cmd_image_metrics.cpp
int cmd_diversity(int argc, char** argv);  // apps/cmd_image_metrics.cpp
int cmd_generate(int argc, char** argv);
int cmd_train_diffusion(int argc, char** argv);
int cmd_synthesize(int argc, char** argv);

}  // namespace cxr::apps
