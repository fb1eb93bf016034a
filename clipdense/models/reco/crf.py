"""Optional dense-CRF refinement of ReCo's scores (Krähenbühl and Koltun,
NIPS 2011), with ReCo's parameters (taken by ReCo from STEGO).

The CRF itself is C++ code behind the ``pydensecrf`` module. The original
package (``pydensecrf`` 1.0rc3, PyPI, 2018) is unmaintained and does not
build on current Pythons; ``pydensecrf2`` (PyPI 1.1, December 2024, a fork
kept for CellSeg3D) installs the same ``pydensecrf`` module. It is in
requirements/runtime.txt (a source distribution: pip compiles it, which
needs a C++ compiler). The paper configs turn the CRF on; without the
module they fail at build time with the instruction to install it.

Difference from the authors' ``utils/crf.py``: they recover the image from
the normalised tensor with ``to_pil_image`` (truncating ``x * 255``, which
can lower a channel by one), here it is rounded back to the loaded
``uint8`` values. They hand the bilateral kernel BGR, here RGB; the kernel
weighs all channels alike, so the order changes nothing.
"""
import numpy as np
import torch
import torch.nn.functional as F


def _import_densecrf():
    try:
        import pydensecrf.densecrf as dcrf
        from pydensecrf.utils import unary_from_softmax
    except ImportError as e:
        raise ImportError(
            'the dense CRF needs the pydensecrf module: `pip install pydensecrf2` '
            '(in requirements/runtime.txt; maintained fork, same module name, built '
            'from source with a C++ compiler) or set model.crf=None') from e
    return dcrf, unary_from_softmax


class DenseCRF:
    """Mean-field dense CRF on ``log_softmax`` of the scores (as ReCo).

    Args:
        iters (int): mean-field iterations (ReCo: 10).
        gaussian_sxy, gaussian_compat: smoothness kernel (1, 3).
        bilateral_sxy, bilateral_srgb, bilateral_compat: appearance kernel
            (67, 3, 4).
    """

    def __init__(self, iters: int = 10, gaussian_sxy: float = 1.0,
                 gaussian_compat: float = 3.0, bilateral_sxy: float = 67.0,
                 bilateral_srgb: float = 3.0, bilateral_compat: float = 4.0):
        self.dcrf, self.unary_from_softmax = _import_densecrf()
        self.iters = int(iters)
        self.gaussian = (float(gaussian_sxy), float(gaussian_compat))
        self.bilateral = (float(bilateral_sxy), float(bilateral_srgb),
                          float(bilateral_compat))

    def refine(self, rgb: np.ndarray, scores: torch.Tensor) -> torch.Tensor:
        """``rgb`` ``(H, W, 3)`` uint8, ``scores`` ``(K, H, W)`` -> CRF
        marginals ``(K, H, W)``."""
        k, h, w = scores.shape
        prob = F.softmax(F.log_softmax(scores.float(), dim=0), dim=0).cpu().numpy()
        d = self.dcrf.DenseCRF2D(w, h, k)
        d.setUnaryEnergy(np.ascontiguousarray(self.unary_from_softmax(prob)))
        d.addPairwiseGaussian(sxy=self.gaussian[0], compat=self.gaussian[1])
        d.addPairwiseBilateral(sxy=self.bilateral[0], srgb=self.bilateral[1],
                               rgbim=np.ascontiguousarray(rgb),
                               compat=self.bilateral[2])
        q = np.array(d.inference(self.iters)).reshape(k, h, w)
        return torch.from_numpy(q).to(scores.device, scores.dtype)

    def refine_batch(self, rgb: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """``rgb`` ``(B, 3, H, W)`` uint8, ``scores`` ``(B, K, H, W)``."""
        return torch.stack([
            self.refine(rgb[i].permute(1, 2, 0).cpu().numpy(), scores[i])
            for i in range(scores.shape[0])])
