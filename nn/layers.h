// All nn layers in one include. Where each lives:
//   nn/module.h      Module (tree, state_dict, strict load_state_dict, train/eval, freezing, to())
//   nn/init.h        kaiming/xavier/normal/uniform/zeros/ones initialisers, fans and gains (torch.nn.init)
//   nn/basic.h       Linear, Embedding, Dropout, Identity, Flatten
//   nn/conv.h        Conv2d, ConvTranspose2d
//   nn/norm.h        BatchNorm2d, GroupNorm, LayerNorm
//   nn/activation.h  ReLU, LeakyReLU, SiLU, GELU, Sigmoid, Tanh
//   nn/pooling.h     MaxPool2d, AvgPool2d, AdaptiveAvgPool2d
//   nn/container.h   Sequential, ModuleList
#pragma once

#include "nn/activation.h"
#include "nn/basic.h"
#include "nn/container.h"
#include "nn/conv.h"
#include "nn/init.h"
#include "nn/module.h"
#include "nn/norm.h"
#include "nn/pooling.h"
