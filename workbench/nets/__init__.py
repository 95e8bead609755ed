"""Network building blocks, one module per family; import from the module, e.g.
``from workbench.nets.dcgan import Generator``.

- ``dcgan``: a small DCGAN-style generator and discriminator (16/32/64 px), the reference GAN.
- ``vit``: transformer blocks and 2D sin-cos position embeddings shared by the ViTs.
- ``mae``: the masked autoencoder in the public MAE checkpoint format, with MOVE's soft inpainting.
- ``features``: frozen self-supervised feature extractors (DINO through timm, the workbench MAE).
- ``segmenter``: MOVE's upsampling segmenter head.
- ``discriminators``: the projected discriminator and a plain spectral-norm conv discriminator.
"""
