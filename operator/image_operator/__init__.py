"""image-operator: manage cloud images from Kubernetes custom resources."""

__version__ = "0.1.0"
