"""course_lib: the tested code of the open course on deep generative models.

Each formula of the course lives here once, with a docstring that names the
chapter deriving it and the paper it comes from. Notebooks import from here
after deriving a piece, so the published text and the tested code never drift.

Modules (chapter in brackets):
    utils   -- seeding, device choice (and whether bf16 is fast), fast mode, progress bars, checkpoints [0]
    data    -- embedded MNIST, torchvision loaders, toy mixtures, scikit-image images, random shifts [0, 7]
    viz     -- sample grids, curves, 2-D scatter plots [0]
    train   -- the one training loop: budgets, history, checkpoints and exact resume (Run), EMA,
               a NaN check before every optimiser step [0, 13]
    config  -- typed configs: frozen dataclasses, unknown settings refused, recorded in checkpoints [0]
    pretrained -- shipped trained weights: loaded when they match, SHA-256 checked, three modes [0]
    distributions -- log-densities, closed-form Gaussian KL, reparameterised sample [1, 6]
    estimators -- reparameterised and score-function (REINFORCE) gradient estimators [6]
    likelihood -- maximum likelihood, KL estimates, Gaussian mixtures, toy densities [1]
    features -- feature extractors: the course's MNIST classifier, Inception-v3 [9]
    metrics -- FID, KID, IS, precision/recall, mode coverage, discriminator ROC/AUC [5, 9]
    gan     -- GAN losses from logits, MLP/DCGAN/conditional models, the correct step [2-4]
    gan_train -- GANTrainer: the two networks, their optimisers, EMA and snapshots on a Run [3-4]
    gan_bugs -- the classic broken GAN training steps, kept to show how they fail [3]
    gan_theory -- 1-D analytic GAN results (D*, generator gradients, thm 2.5 of Arjovsky & Bottou), Dirac-GAN [2]
    gan_latent -- latent interpolation paths scored on the real-digit manifold [4]
    gan_clusters -- a GAN conditioned on spectral clusters of its data, sampled with their shares (the GAN recipe) [4]
    gan_recipe -- the MNIST GAN recipes' configs and train_mnist_gan (re-exported by recipes) [3-4]
    vae     -- VAEs: encoders/decoders, ELBO, IWAE bound, beta-VAE, CVAE, KL warm-up, free bits [6-8]
    vae_nets -- the VAEs' encoders and decoders: MLP, conv, residual, row-GRU, PixelCNN (re-exported by vae) [6-8]
    vae_train -- VAE training step and loop, KL warm-up, test metrics in nats (re-exported by vae) [7-8]
    linear_gaussian -- the exact evidence and posterior of the linear-Gaussian model (probabilistic PCA) [6]
    vae_analysis -- beta-objectives against the bound, the no-sampling 'VAE', inference gaps [7-8]
    recipes -- recommended models (GANConfig, VAEConfig) trained in one call, train_mnist_gan [4]
               (MNIST_GAN_CONFIG: clusters; DCGAN_CONFIG: chapter 4's plain DCGAN),
               train_mnist_vae [7] (MNIST_VAE_CONFIG, and MNIST_PIXELVAE_CONFIG for likelihood)
    checks  -- the exercise checks, one module per chapter [all]
    assignments -- student versions of the notebooks (nbgrader), exercises for the tests [all]
    book    -- the book build's executed notebooks, exported from its execution cache [all]
"""

__version__ = "0.1.0"
