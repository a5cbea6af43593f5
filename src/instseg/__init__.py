"""instseg: train, evaluate and compare instance-segmentation models on your own data.

Nothing heavy is imported here: ``import instseg`` and ``instseg --help`` stay fast.
"""

__version__ = "0.1.0"
