import torch.nn.functional as F

from zoo.losses import BinaryLoss, masked_mean


class BoundaryBCE(BinaryLoss):
    def __init__(self, boost: float = 4.0):
        super().__init__()
        self.boost = boost

    def compute(self, logits, target, valid):
        # a pixel is on the boundary when its 3x3 neighbourhood holds both classes
        grown = F.max_pool2d(target, 3, 1, 1)
        shrunk = -F.max_pool2d(-target, 3, 1, 1)
        weight = 1 + self.boost * (grown - shrunk)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        return masked_mean(weight * bce, valid) / masked_mean(weight, valid)
