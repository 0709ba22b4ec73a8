import pytest

from selfsup.config import ConfigError, load_config, parse_override


def test_defaults_are_simclr_on_digits():
    cfg = load_config()
    assert (cfg.method, cfg.data) == ("simclr", "digits")


def test_yaml_and_overrides_apply_in_order(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("method: simclr\ntrain:\n  lr: 0.5\n  betas: [0.9, 0.95]\n")
    cfg = load_config(path, ["train.lr=0.1", "method_args={temperature: 0.2}"])
    assert cfg.train.lr == 0.1 and cfg.train.betas == (0.9, 0.95)
    assert cfg.method_args == {"temperature": 0.2}


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lrr=1", "Did you mean 'lr'"),
        ("epoch=3", "Did you mean 'eval'|unknown key 'epoch'"),
        ("train.batch_size=abc", "expected int"),
        ("train.optimizer=adam", "use sgd, lars or adamw"),
        ("train=3", "expected a mapping"),
    ],
)
def test_bad_overrides_say_what_to_change(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_unknown_yaml_key_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  warmup_epoch: 3\n")
    with pytest.raises(ConfigError, match=r"warmup_epoch.*bad.yaml.*warmup_epochs"):
        load_config(path)


def test_override_syntax():
    assert parse_override("a.b=1") == {"a": {"b": 1}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("novalue")
