"""Bringing weights in from other frameworks (torchvision S3D and GoogLeNet, TF-Slim Inception-v1).

torch_pickle      read a torch.save .pth into numpy without torch (restricted unpickler)
torchvision_s3d   torchvision S3D state dict -> s3d_torchvision variables
slim_inception    TF-Slim Inception-v1 checkpoint -> i2d variables -> inflated 3D init
torchvision_googlenet  torchvision GoogLeNet state dict -> i2d variables (BN scale folded)
variables         shared check: imported arrays fill a model's variables exactly
"""
