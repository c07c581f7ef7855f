"""semi3lib: a reproduction of Semi3-Net (Lei et al., TCSVT 2020) for sketch-based image retrieval."""

__version__ = "0.1.0"
