"""The imageops.io/v1alpha1 API as pydantic models: the single source of the CRD schemas."""

from image_operator.api.baseimage import BaseImage
from image_operator.api.image import Image
from image_operator.api.listing import CommunityListing
from image_operator.api.pipeline import ImagePipeline
from image_operator.api.provider import ImageProvider

ALL_KINDS = (ImageProvider, Image, BaseImage, ImagePipeline, CommunityListing)

__all__ = ["ALL_KINDS", "BaseImage", "CommunityListing", "Image", "ImagePipeline", "ImageProvider"]
