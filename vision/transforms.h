// Image transforms and augmentations for chest radiographs (torchvision.transforms.v2 semantics on float
// tensors): one include for resize (vision/transforms/resize.h), geometry (geometry.h), intensity (color.h) and
// the random transforms, RandAugment and Compose (augment.h).
#pragma once

#include "vision/transforms/augment.h"
#include "vision/transforms/color.h"
#include "vision/transforms/geometry.h"
#include "vision/transforms/resize.h"
