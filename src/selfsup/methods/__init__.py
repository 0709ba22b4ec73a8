"""The method family: each method a composition of encoder + heads + loss, registered with its
paper's defaults (`create_method("simclr", encoder)` is what `--method simclr` builds).

Importing this package registers every method; `list_methods()` names them.
"""

from selfsup.methods.atc import ATC
from selfsup.methods.barlow_twins import BarlowTwins
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.byol import BYOL
from selfsup.methods.cola import COLA
from selfsup.methods.cpc import CPC
from selfsup.methods.curl import CURL
from selfsup.methods.dino import DINO
from selfsup.methods.mae import MAE
from selfsup.methods.mlm import MaskedLanguageModel
from selfsup.methods.moco import MoCo
from selfsup.methods.nnclr import NNCLR
from selfsup.methods.registry import (
    MethodSpec,
    create_method,
    list_methods,
    method_spec,
    paper_defaults,
    register_method,
)
from selfsup.methods.simclr import SimCLR
from selfsup.methods.simcse import SimCSE
from selfsup.methods.simsiam import SimSiam
from selfsup.methods.stdim import STDIM
from selfsup.methods.supervised import MetricLearning, SupCon
from selfsup.methods.ts2vec import TS2Vec
from selfsup.methods.vicreg import VICReg

__all__ = [
    "ATC", "BYOL", "COLA", "CPC", "CURL", "DINO", "MAE", "NNCLR", "STDIM", "BarlowTwins",
    "MaskedLanguageModel", "Method", "MethodSpec", "MetricLearning", "MoCo", "SimCLR", "SimCSE",
    "SimSiam", "StepOutput", "SupCon", "TS2Vec", "VICReg",
    "create_method", "list_methods", "method_spec", "paper_defaults", "register_method",
]  # fmt: skip
