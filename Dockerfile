# syntax=docker/dockerfile:1.7
# image-operator container image: `make image`. Multi-stage: the wheel is built with the build
# tools in the first stage; the final stage has only Python, the wheel's dependencies and a
# non-root user. Base images are pinned by tag and digest-less here on purpose: pin the digest
# in your registry mirror (`docker buildx imagetools inspect python:3.11.11-slim-bookworm`).

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
# Only the runtime package: the development distribution in dev/ (emulator, local control plane,
# generators) is not in the build context (.dockerignore) and never in the image.
COPY operator ./operator
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels image-operator \
    && groupadd --gid 65532 operator \
    && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin operator
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["image-operator"]
CMD ["run"]
