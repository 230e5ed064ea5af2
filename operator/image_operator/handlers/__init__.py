"""kopf handlers: thin adapters from Kubernetes events to the reconcilers.

Importing this package registers every handler with kopf.
"""

from image_operator.handlers import baseimage as baseimage
from image_operator.handlers import drift as drift
from image_operator.handlers import image, imageprovider, setup
from image_operator.handlers import leadership as leadership
from image_operator.handlers import listing as listing
from image_operator.handlers import objectstate as objectstate
from image_operator.handlers import pipeline as pipeline

__all__ = ["image", "imageprovider", "setup"]
