"""The method registry (#16, methods part): one call builds what `--method NAME` builds, with the
paper's defaults registered once beside each method."""

import pytest
import torch

from selfsup.build import METHODS, build_method
from selfsup.encoders import create_encoder
from selfsup.methods import MoCo, SimCLR, create_method, list_methods, paper_defaults

# Paper values the docs cite (docs/methods.md), checked against the registered defaults.
CITED = {
    "simclr": {"temperature": 0.2, "proj_dim": 128},  # 0.2: measured here; see build_simclr
    "moco": {"queue_size": 65536, "temperature": 0.2, "momentum": 0.999, "proj_dim": 128},
    "mocov3": {"temperature": 1.0, "proj_hidden_dim": 4096, "proj_dim": 256, "momentum": 0.99},
    "byol": {"proj_hidden_dim": 4096, "proj_dim": 256, "momentum": 0.996, "final_momentum": 1.0},
    "nnclr": {"proj_hidden_dim": 2048, "proj_dim": 256, "support_set_size": 98304},
    "simsiam": {"proj_hidden_dim": 2048, "proj_dim": 2048, "pred_hidden_dim": 512},
    "barlow_twins": {"proj_hidden_dim": 8192, "proj_dim": 8192, "lambd": 0.0051},
    "vicreg": {"proj_dim": 8192, "sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0},
    "dino": {"out_dim": 65536, "student_temp": 0.1, "teacher_temp": 0.04, "momentum": 0.996},
    "mae": {"mask_ratio": 0.75, "decoder_dim": 512, "decoder_depth": 8},
    "supcon": {"temperature": 0.1, "proj_dim": 128},
    "triplet": {"margin": 0.2, "miner": "semi_hard"},
    "npair": {"l2_reg": 0.02},
    "contrastive": {"pos_margin": 0.0, "neg_margin": 1.0},
    "logistic": {"init_bias": -10.0},
    "simcse": {"temperature": 0.05, "proj_dim": None},  # Gao et al. 2021; docs/text.md
    "mlm": {},  # BERT: the 15 % / 80-10-10 masking is its view recipe's
    "ts2vec": {"alpha": 0.5, "temporal_unit": 0},  # Yue et al. 2022, the official code
    "cpc": {"context_dim": 256, "prediction_steps": 12},  # van den Oord et al. 2018, audio
    "cola": {"proj_dim": 512},  # Saeed et al. 2021: 512-d head, bilinear, no temperature
    "curl": {"proj_dim": 50, "momentum": 0.95},  # Laskin et al. 2020: encoder_tau 0.05
    "atc": {"pred_hidden_dim": 512, "momentum": 0.99},  # Stooke et al. 2021, Atari config
    "stdim": {},  # Anand et al. 2019: the loss's two linear maps, sized by the encoder
}
# The encoder each method is built around in these tests: its kind of data's.
ENCODER = {
    "mae": "vit_micro_cifar",
    "simcse": "text_transformer_tiny",
    "mlm": "text_transformer_tiny",
    "ts2vec": "ts2vec_encoder",
    "cpc": "ts2vec_encoder",
    "cola": "audio_ntt",
    "curl": "nature_cnn",
    "atc": "nature_cnn",
    "stdim": "nature_cnn",
}


def test_every_method_is_registered_with_the_cited_defaults():
    assert set(list_methods()) == set(CITED) == set(METHODS)
    for name, cited in CITED.items():
        defaults = paper_defaults(name)
        assert {k: defaults[k] for k in cited} == cited, name


@pytest.mark.parametrize("name", sorted(CITED))
def test_create_method_builds_what_the_cli_builds_with_paper_defaults(name):
    """Paper widths (8192-d heads, a 65,536-row queue) built on the meta device: no memory."""
    with torch.device("meta"):
        encoder = create_encoder(ENCODER.get(name, "convnet_small"))
        ours = create_method(name, encoder)
        cli = build_method(name, encoder, {})
    assert type(ours) is type(cli)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in cli.state_dict().items()
    }


def test_python_gets_the_class_and_the_cli_method_in_one_call():
    encoder = create_encoder("convnet_small", width=4)
    method = create_method("simclr", encoder, temperature=0.3)
    assert isinstance(method, SimCLR) and method.loss.temperature == 0.3
    with torch.device("meta"):
        moco = create_method("moco", create_encoder("convnet_small"))
    assert isinstance(moco, MoCo) and moco.queue.size == 65536  # the class default agrees


def test_unknown_names_and_arguments_list_the_known_ones():
    with pytest.raises(ValueError, match="Did you mean 'simclr'"):
        create_method("simclrr", create_encoder("convnet_small", width=4))
    with pytest.raises(ValueError, match="Did you mean 'temperature'"):
        create_method("simclr", create_encoder("convnet_small", width=4), temprature=0.1)
