"""Checkpoint resolution (option, HF cache at the pinned revision, the missing-weights error), the remote-code
fingerprint, the dtype keyword, and the cards and commands around them."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from refbench.adapters import hf
from refbench.adapters.base import AdapterError, RunContext
from refbench.adapters.registry import adapter_card, aliases, load_adapter
from refbench.cli import main
from tests.adapters.conftest import HF_HOME, needs_transformers

SHA = "0123456789abcdef0123456789abcdef01234567"


def test_missing_weights_error_gives_the_download_command(tmp_path, no_network):
    card = adapter_card("sa2va-4b")
    with pytest.raises(AdapterError) as e:
        hf.resolve_checkpoint(card.name, card.weights, {})
    msg = str(e.value)
    assert "\n" not in msg and "`huggingface-cli download ByteDance/Sa2VA-4B`" in msg
    assert "--model-arg checkpoint=DIR" in msg and "--model-arg download=true" in msg
    with pytest.raises(AdapterError, match=r"at revision " + SHA + r" is not in the Hugging Face cache.*"
                                           r"`huggingface-cli download ByteDance/Sa2VA-4B --revision " + SHA + "`"):
        hf.resolve_checkpoint(card.name, card.weights, {"revision": SHA})
    ms = adapter_card("momentseg")
    with pytest.raises(AdapterError, match=r"`modelscope download --model dmmm997/MomentSeg-3B --local_dir "
                                           r"./MomentSeg-3B` and pass --model-arg checkpoint=./MomentSeg-3B"):
        hf.resolve_checkpoint(ms.name, ms.weights, {})
    with pytest.raises(AdapterError, match=r"checkpoint=.*nowhere: no config.json there"):
        hf.resolve_checkpoint(ms.name, ms.weights, {"checkpoint": str(tmp_path / "nowhere")})
    assert not no_network


def test_cli_missing_weights_is_one_line(demo_env):
    r = CliRunner().invoke(main, ["run", "--model", "sa2va-qwen2.5-vl-3b", "--dataset", "demo_refcoco_val",
                                  "--no-leaderboard"])
    pytest.importorskip("transformers")
    assert r.exit_code != 0
    line = r.output.strip().splitlines()[-1]
    assert line.startswith("Error: model sa2va-qwen2.5-vl-3b: ByteDance/Sa2VA-Qwen2_5-VL-3B is not in the Hugging "
                           "Face cache") and "huggingface-cli download ByteDance/Sa2VA-Qwen2_5-VL-3B" in line
    assert "Traceback" not in r.output and "AdapterError" not in r.output


@needs_transformers
def test_hf_cache_snapshot_is_found_offline_and_its_sha_recorded(stubs, no_network, stub_log):
    repo = HF_HOME / "hub" / "models--ByteDance--Sa2VA-InternVL3-2B"
    snap = repo / "snapshots" / SHA
    if not snap.exists():
        shutil.copytree(stubs["internvl"], snap)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(SHA)
    card = adapter_card("sa2va-internvl3-2b")
    path, prov = hf.resolve_checkpoint(card.name, card.weights, {})
    assert path == snap and prov == {"source": "hf-cache", "repo": "ByteDance/Sa2VA-InternVL3-2B", "revision": SHA}
    adapter, _ = load_adapter("sa2va-internvl3-2b", {"ignore_pins": True})
    adapter.setup(RunContext())
    assert adapter.fingerprint_state()["revision"] == SHA
    assert not no_network


@needs_transformers
def test_fingerprint_tracks_remote_code_and_options_not_the_path(stubs, tmp_path):
    def fp(ckpt, **opts):
        a, _ = load_adapter("sa2va-internvl3-2b", {"checkpoint": str(ckpt), "ignore_pins": True, **opts})
        a.setup(RunContext())
        return a.fingerprint()

    copy = shutil.copytree(stubs["internvl"], tmp_path / "elsewhere")
    base = fp(stubs["internvl"])
    assert fp(copy) == base  # where the checkpoint lives does not change predictions
    assert fp(stubs["internvl"], dtype="float32") != base
    assert fp(stubs["internvl"], mllm_frames="uniform") != base
    assert fp(stubs["internvl"], device_map=None, batch_size=3) == base
    with open(copy / "modeling_sa2va_chat.py", "a") as fh:
        fh.write("\n# a changed remote-code file\n")
    assert fp(copy) != base
    cfg = json.loads((copy / "config.json").read_text())
    h = hf.code_hash(copy)
    assert set(h["files"]) == {"config.json", "configuration_sa2va_chat.py", "modeling_sa2va_chat.py"}
    assert cfg["auto_map"]["AutoModel"].startswith("modeling_sa2va_chat")


@needs_transformers
def test_dtype_keyword_follows_transformers():
    import transformers

    kw = hf.dtype_kwargs("bfloat16")
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    assert list(kw) == (["dtype"] if (major, minor) >= (4, 56) else ["torch_dtype"])
    with pytest.raises(AdapterError, match="dtype=float8"):
        hf.torch_dtype("float8")


def test_trust_notice_once(capsys, tmp_path):
    hf._NOTICED.clear()
    hf.trust_notice("m", tmp_path, "ab" * 32)
    hf.trust_notice("m", tmp_path, "ab" * 32)
    err = capsys.readouterr().err
    assert err.count("runs the Python code shipped in its checkpoint (trust_remote_code=True)") == 1


def test_cards_aliases_and_show():
    assert aliases() == {"momentseg": "momentseg-3b", "sa2va": "sa2va-4b"}
    names = {"momentseg-3b", "momentseg-7b", "sa2va-1b", "sa2va-4b", "sa2va-8b", "sa2va-26b", "sa2va-internvl3-2b",
             "sa2va-internvl3-8b", "sa2va-internvl3-14b", "sa2va-qwen2.5-vl-3b", "sa2va-qwen2.5-vl-7b",
             "sa2va-qwen3-vl-4b"}
    for n in names:
        c = adapter_card(n)
        assert c.trust_remote_code and c.environment and c.weights and c.status
        assert c.options["dtype"] == "bfloat16"
    ms = adapter_card("momentseg")
    assert ms.name == "momentseg-3b" and ms.tasks == ("refvos", "tsg", "res")
    assert (ms.options["num_frames"], ms.options["inference_mode"], ms.options["tsg_threshold"],
            ms.options["tsg_span"], ms.options["video_max_pixels"], ms.options["tsg_video_max_pixels"]) == (
        8, "multi-frame", 0.4, "find", 28224, 50176)
    assert adapter_card("sa2va").options["mllm_frames"] == "first5"
    envs = {n: adapter_card(n).environment.name for n in names}
    assert {n for n, e in envs.items() if e == "sa2va-legacy"} == {"sa2va-1b", "sa2va-4b", "sa2va-8b", "sa2va-26b"}
    assert envs["momentseg-7b"] == "momentseg" and envs["sa2va-qwen3-vl-4b"] == "sa2va-latest"
    out = CliRunner().invoke(main, ["models", "list"]).output
    assert "momentseg            (alias of momentseg-3b)" in out and "sa2va                (alias of sa2va-4b)" in out
    show = CliRunner().invoke(main, ["models", "show", "sa2va"])
    assert show.exit_code == 0, show.output
    text = show.output
    assert text.startswith("sa2va-4b (alias sa2va): Sa2VA-4B")
    assert "mllm_frames = 'first5'  (first5 | uniform)" in text and "weights.hub: ByteDance/Sa2VA-4B" in text
    assert "environment: sa2va-legacy (python >=3.11,<3.12; pins transformers==4.49.0)" in text
    assert "weights.revision: not pinned (the HF weights (and model-card numbers) changed on 2025-09-08" in text
    assert "trust_remote_code: true" in text and "status:" in text and "reported numbers:" in text
    bad = CliRunner().invoke(main, ["models", "show", "sa2vaa"])
    assert bad.exit_code == 2 and "did you mean sa2va" in bad.output


def test_card_validation(tmp_path):
    from refbench.adapters.registry import _card_from_mapping
    from refbench.cards import CardError

    base = {"name": "x", "title": "x", "code": "m:C", "tasks": ["refvos"]}
    with pytest.raises(CardError, match="weights.revision must be a 40-hex commit sha or null"):
        _card_from_mapping({**base, "weights": {"hub": "a/b", "revision": "main"}}, "x.yaml")
    with pytest.raises(CardError, match="weights needs a hub or a modelscope id"):
        _card_from_mapping({**base, "weights": {"revision": None}}, "x.yaml")
    with pytest.raises(CardError, match=r"environment.pins: 'transformers>=4' is not an exact pin"):
        _card_from_mapping({**base, "environment": {"name": "e", "pins": ["transformers>=4"]}}, "x.yaml")
    with pytest.raises(CardError, match="environment.python must be like"):
        _card_from_mapping({**base, "environment": {"name": "e", "python": "3.11"}}, "x.yaml")
    with pytest.raises(CardError, match="trust_remote_code must be true or false"):
        _card_from_mapping({**base, "trust_remote_code": "yes"}, "x.yaml")
    ok = _card_from_mapping({**base, "weights": {"hub": "a/b", "revision": SHA},
                             "environment": {"name": "e", "python": ">=3.10,<3.12", "pins": ["transformers==4.51.3"],
                                             "packages": ["scipy", "peft==0.11.1", "timm>=1,<2"]}}, "x.yaml")
    assert ok.environment.pinned() == {"transformers": "4.51.3"}


def test_cards_sharing_an_environment_agree():
    from refbench.envs import env_cards

    for env, cards in env_cards().items():
        specs = {json.dumps(c.environment.to_dict(), sort_keys=True) for c in cards}
        assert len(specs) == 1, f"cards of environment {env} disagree on it"


@needs_transformers
def test_transformers_5_breakage_is_a_clear_error(stubs, monkeypatch):
    """Remote classes that never call post_init fail on transformers 5 with AttributeError 'all_tied_weights_keys'
    (ADAPTERS.md 5.4); refbench names the cause and the environment instead."""
    import transformers

    def broken(*a, **kw):
        raise AttributeError("'Sa2VAChatModel' object has no attribute 'all_tied_weights_keys'")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", broken)
    with pytest.raises(AdapterError, match=r"never calls post_init, which transformers 5 needs\); use its "
                                           r"environment: refbench env create sa2va-4b"):
        hf.load_model("sa2va-4b", stubs["internvl"], dtype="bfloat16", device="cpu")


def test_only_download_true_fetches(monkeypatch, tmp_path):
    """Without download=true the hub is asked with local_files_only=True only; with it, one real fetch."""
    import huggingface_hub

    calls = []

    def fake(repo, revision=None, local_files_only=False, **kw):
        calls.append((repo, revision, local_files_only))
        if local_files_only:
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        d = tmp_path / "snapshots" / SHA
        d.mkdir(parents=True, exist_ok=True)
        return str(d)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    card = adapter_card("sa2va-8b")
    with pytest.raises(AdapterError, match="not in the Hugging Face cache"):
        hf.resolve_checkpoint(card.name, card.weights, {})
    assert calls == [("ByteDance/Sa2VA-8B", None, True)]
    path, prov = hf.resolve_checkpoint(card.name, card.weights, {"download": True})
    assert calls[1:] == [("ByteDance/Sa2VA-8B", None, True), ("ByteDance/Sa2VA-8B", None, False)]
    assert prov == {"source": "hf-download", "repo": "ByteDance/Sa2VA-8B", "revision": SHA}
