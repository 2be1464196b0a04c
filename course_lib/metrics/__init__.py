r"""Metrics for generative models: FID, FID_∞, KID, IS, precision/recall, density/coverage, modes, ROC.

Derived and demonstrated in chapter 9 (evaluating generative models); the
mode-coverage protocol is the one of chapter 5 (mode collapse), after the
PacGAN / VEEGAN toy mixtures.

Every sample-based metric takes **features** ``(n, d)`` (NumPy or torch), or
**images plus an extractor**: pass ``extractor=`` (e.g.
:func:`course_lib.features.load_mnist_classifier`) and the images are run
through :func:`course_lib.features.extract` first. Computations are done in
float64 NumPy; results are Python floats.

* :mod:`.frechet` -- :func:`frechet_distance`, :func:`fid` (Heusel et al., 2017) through a
  Cholesky factor and ``eigvalsh``; :func:`fid_nuclear`, an independent reference;
  :func:`fid_infinity` (Chong & Forsyth, 2020); the published ``sqrtm`` / ``eigvals`` methods.
* :mod:`.kid` -- :func:`kid` (Bińkowski et al., 2018): unbiased MMD² with the cubic kernel.
* :mod:`.inception` -- :func:`inception_score` (Salimans et al., 2016).
* :mod:`.knn` -- :func:`precision_recall` (Kynkäänniemi et al., 2019), :func:`density_coverage`
  (Naeem et al., 2020), :func:`memorisation_rate` (nearest training image).
* :mod:`.toy` -- :func:`mode_coverage` (Srivastava et al., 2017, VEEGAN; Lin et al., 2018, PacGAN).
* :mod:`.discriminator` -- :func:`discriminator_metrics`: accuracy, ROC curve and AUC (scikit-learn).
* :mod:`.perceptual` -- :func:`perceptual_distance`: the LPIPS equation (Zhang et al., 2018) with
  unit weights on the course's MNIST classifier (appendix).
"""

from .discriminator import DiscriminatorReport, discriminator_metrics
from .frechet import (
    BaselineFD,
    FIDInfinity,
    fid,
    fid_infinity,
    fid_nuclear,
    frechet_distance,
    frechet_distance_eigvals,
    frechet_distance_sqrtm,
    gaussian_stats,
    generator_fid,
    psd_factor,
    trace_sqrt_product,
)
from .inception import inception_score
from .kid import kid, mmd2_unbiased, polynomial_kernel
from .knn import (
    DensityCoverage,
    coverage_expectation,
    density_coverage,
    knn_radii,
    memorisation_rate,
    nearest_distances,
    precision_recall,
)
from .perceptual import perceptual_distance
from .toy import ModeCoverage, ModeStatistics, mode_coverage, mode_statistics

__all__ = [
    "BaselineFD", "DensityCoverage", "DiscriminatorReport", "FIDInfinity", "ModeCoverage", "ModeStatistics",
    "coverage_expectation", "density_coverage", "discriminator_metrics", "fid", "fid_infinity",
    "fid_nuclear", "frechet_distance", "generator_fid", "frechet_distance_eigvals", "frechet_distance_sqrtm",
    "gaussian_stats", "inception_score", "kid", "knn_radii", "memorisation_rate", "mmd2_unbiased",
    "mode_coverage", "mode_statistics", "nearest_distances", "perceptual_distance", "polynomial_kernel", "precision_recall", "psd_factor",
    "trace_sqrt_product",
]
