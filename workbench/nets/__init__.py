"""Network building blocks, one module per family; import from the module, e.g.
``from workbench.nets.dcgan import Generator``.

- ``dcgan``: a small DCGAN-style generator and discriminator (16/32/64 px), the reference GAN.
"""
