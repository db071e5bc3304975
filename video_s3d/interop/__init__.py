"""Bringing weights in from other frameworks (torchvision S3D, TF-Slim Inception-v1).

  torch_pickle      read a torch.save .pth into numpy without torch (restricted unpickler)
  torchvision_s3d   torchvision S3D state dict -> s3d_torchvision variables
  slim_inception    TF-Slim Inception-v1 checkpoint -> i2d variables -> inflated 3D init
  variables         shared check: imported arrays fill a model's variables exactly
"""
