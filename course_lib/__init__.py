"""course_lib: the tested code of the open course on deep generative models.

Each formula of the course lives here once, with a docstring that names the
chapter deriving it and the paper it comes from. Notebooks import from here
after deriving a piece, so the published text and the tested code never drift.

Modules (chapter in brackets):
    utils   -- seeding, device choice, fast mode, progress bars, checkpoints [0]
    data    -- embedded MNIST, torchvision loaders, toy mixtures, scikit-image images [0]
    viz     -- sample grids, curves, 2-D scatter plots [0]
    train   -- the shared training loop: budgets (epochs/steps/seconds), history, NaN guard [0]
    distributions -- log-densities, closed-form Gaussian KL, reparameterised sample [1, 6]
    vae     -- VAEs: encoders/decoders, ELBO, IWAE bound, beta-VAE, CVAE, KL warm-up, free bits [6-8]
    recipes -- recommended models trained in one call, e.g. train_mnist_vae [7]
    checks  -- the exercise checks, one module per chapter [all]
"""

__version__ = "0.1.0"
