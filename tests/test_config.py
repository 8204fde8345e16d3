"""TOML configs of batch ensembles: what is accepted, and one-line errors naming the key."""
import math
from pathlib import Path

import numpy as np
import pytest

from trajspin import Chain, InputError
from trajspin.runners.config import load_config, parse_config

CONFIGS = Path(__file__).resolve().parents[1] / "mpi_scripts" / "configs"


def base():
    return {"chain": {"sizes": [4, 2]},
            "times": {"start": 0.01, "stop": 10.0, "points": 5},
            "run": {"ntraj": 100, "seed": 3}}


def with_(**changes):
    """base() with table.key = value changes (value None deletes the key)."""
    d = base()
    for dotted, value in changes.items():
        table, key = dotted.split("__")
        d.setdefault(table, {})
        if value is None:
            d[table].pop(key, None)
        else:
            d[table][key] = value
    return d


def test_minimal_config_defaults():
    cfg = parse_config(base())
    assert cfg.sizes == (4, 2) and cfg.gamma == (1.0,)
    assert cfg.chunk == 256 and cfg.initial == (4, 0) and cfg.max_ntraj == 100
    assert cfg.target_err is None and cfg.records == "none"
    assert cfg.checkpoint_path is None and cfg.checkpoint_interval == 60.0
    np.testing.assert_allclose(cfg.times, np.logspace(-2, 1, 5))
    assert cfg.chain() == Chain([4, 2])


def test_linear_and_explicit_grids():
    cfg = parse_config(with_(times__spacing="linear", times__start=0))
    np.testing.assert_allclose(cfg.times, np.linspace(0, 10, 5))
    cfg = parse_config({**base(), "times": {"values": [0, 0.5, 2]}})
    assert cfg.times.tolist() == [0.0, 0.5, 2.0]


def test_target_err_and_per_reservoir_gamma():
    cfg = parse_config(with_(run__target_err=1e-3, chain__sizes=[3, 2, 1], chain__gamma=[1, 0.5]))
    assert cfg.max_ntraj == 100 * 100 and cfg.target_err == 1e-3 and cfg.gamma == (1.0, 0.5)
    cfg = parse_config(with_(run__target_err=1e-3, run__max_ntraj=500))
    assert cfg.max_ntraj == 500


@pytest.mark.parametrize("changes, key", [
    ({"run__ntraj": -5}, "run.ntraj"),
    ({"run__ntraj": 0}, "run.ntraj"),
    ({"run__ntraj": 10.5}, "run.ntraj"),
    ({"run__ntraj": "100"}, "run.ntraj"),
    ({"run__ntraj": True}, "run.ntraj"),
    ({"run__ntraj": None}, "run.ntraj"),
    ({"run__seed": -1}, "run.seed"),
    ({"run__seed": 2**63}, "run.seed"),
    ({"run__chunk": 0}, "run.chunk"),
    ({"run__ntrajs": 5}, "run.ntrajs"),
    ({"run__initial": [5, 0]}, "run.initial"),
    ({"run__initial": [1, 0, 0]}, "run.initial"),
    ({"run__initial": [1.5, 0]}, "run.initial[0]"),
    ({"run__target_err": -1.0}, "run.target_err"),
    ({"run__max_ntraj": 1000}, "run.max_ntraj"),
    ({"run__target_err": 0.1, "run__max_ntraj": 10}, "run.max_ntraj"),
    ({"chain__sizes": [4]}, "chain.sizes"),
    ({"chain__sizes": [4, 0]}, "chain.sizes[1]"),
    ({"chain__sizes": "4,2"}, "chain.sizes"),
    ({"chain__sizes": [4.0, 2]}, "chain.sizes[0]"),
    ({"chain__gamma": -1}, "chain.gamma"),
    ({"chain__gamma": [1, 2, 3]}, "chain.gamma"),
    ({"chain__gamma": "fast"}, "chain.gamma"),
    ({"chain__size": [4, 2]}, "chain.size"),
    ({"times__points": 0}, "times.points"),
    ({"times__points": 2.5}, "times.points"),
    ({"times__start": 0.0}, "times.start"),
    ({"times__start": -1.0, "times__spacing": "linear"}, "times.start"),
    ({"times__stop": 0.001}, "times.stop"),
    ({"times__spacing": "cubic"}, "times.spacing"),
    ({"times__stop": None}, "times.stop"),
    ({"times__values": [1, 2]}, "times.values"),
    ({"output__records": "all"}, "output.records"),
    ({"output__format": "hdf5"}, "output.format"),
    ({"checkpoint__interval_seconds": 0}, "checkpoint.interval_seconds"),
    ({"checkpoint__interval_seconds": "1m"}, "checkpoint.interval_seconds"),
    ({"checkpoint__path": 3}, "checkpoint.path"),
])
def test_bad_values_name_their_key(changes, key):
    with pytest.raises(InputError) as err:
        parse_config(with_(**changes))
    msg = str(err.value)
    assert key in msg and "\n" not in msg


@pytest.mark.parametrize("doc, key", [
    ({"chain": {"sizes": [4, 2]}, "times": {"values": [1.0]}}, "[run]"),
    ({"run": {"ntraj": 1, "seed": 1}, "times": {"values": [1.0]}}, "[chain]"),
    ({"chain": {"sizes": [4, 2]}, "run": {"ntraj": 1, "seed": 1}}, "[times]"),
    ({**base(), "runs": {}}, "runs"),
    ({**base(), "run": 5}, "run"),
    ({**base(), "description": 7}, "description"),
    ({**base(), "times": {"values": [2.0, 1.0]}}, "times.values"),
    ({**base(), "times": {"values": [0.0, "x"]}}, "times.values[1]"),
    ({**base(), "times": {"values": [1.0, math.inf]}}, "times.values[1]"),
])
def test_bad_documents(doc, key):
    with pytest.raises(InputError) as err:
        parse_config(doc)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(InputError, match="did you mean 'run.ntraj'"):
        parse_config(with_(run__ntrajs=5))


def test_records_are_accepted_and_enter_the_physics_hash():
    none = parse_config(base())
    assert "output.records" not in none.physics()           # old checkpoints stay valid
    for kind in ("summaries", "full"):
        cfg = parse_config(with_(output__records=kind))
        assert cfg.records == kind and cfg.physics()["output.records"] == kind
        assert cfg.config_hash() != none.config_hash()


def test_file_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[chain]\nsizes = [4, 2\n")
    with pytest.raises(InputError, match="invalid TOML") as err:
        load_config(bad)
    assert "\n" not in str(err.value)


def test_physics_hash_ignores_bookkeeping_only():
    a = parse_config(base())
    b = parse_config(with_(checkpoint__interval_seconds=5, checkpoint__path="x.npz"))
    assert a.config_hash() == b.config_hash()
    for changes in ({"run__seed": 4}, {"run__chunk": 128}, {"times__points": 6},
                    {"chain__gamma": 2.0}, {"run__initial": [3, 0]}, {"run__ntraj": 101}):
        assert parse_config(with_(**changes)).config_hash() != a.config_hash(), changes


@pytest.mark.parametrize("name, sizes, initial", [
    ("default", (12, 6, 2), (12, 0, 0)), ("fig2a", (40, 2), (40, 0)),
    ("fig2b", (12, 6, 2), (12, 0, 0)), ("fig2c", (8, 6, 5, 1), (8, 0, 0, 0)),
    ("fig4a", (12, 6, 2), (6, 0, 0))])
def test_shipped_configs(name, sizes, initial):
    cfg = load_config(CONFIGS / f"{name}.toml")
    assert cfg.sizes == sizes and cfg.initial == initial
    assert cfg.times.size == 400
    assert cfg.times[0] == pytest.approx(1e-4) and cfg.times[-1] == pytest.approx(1e3)
    if name == "default":
        assert cfg.ntraj == 20000 and cfg.seed == 1


def test_physics_breadth_keys_make_the_same_chain_as_the_api():
    cfg = parse_config(with_(chain__sizes=[3, 2, 1], chain__temperature=1.6, chain__omega0=2 * math.pi * 1e10,
                             chain__kappa=[0.1, 0.0, 0.2],
                             chain__schedule={"switch_times": [2.0], "factors": [[1, 0], [0, 1]]},
                             run__initial=["up:2", "half", 0], run__observables=["n_dist", "coherence"]))
    chain = Chain([3, 2, 1], temperature=1.6, omega0=2 * math.pi * 1e10, kappa=[0.1, 0.0, 0.2],
                  schedule=([2.0], [[1, 0], [0, 1]]))
    assert cfg.chain() == chain
    assert cfg.initial_request() == ["up:2", "half", 0]
    assert cfg.observables == ("jz", "n_dist", "coherence")
    assert cfg.basis_initial is None
    assert parse_config(with_(run__initial=["excited", "ground"])).basis_initial == (4, 0)
    # the physics enters the checkpoint hash
    assert cfg.config_hash() != parse_config(with_(chain__sizes=[3, 2, 1])).config_hash()


def test_initial_vector_file(tmp_path):
    psi = np.zeros(15)
    psi[[5, 9]] = [0.6, 0.8]
    path = tmp_path / "psi.npy"
    np.save(path, psi)
    cfg = parse_config(with_(run__initial_vector=str(path), run__initial=None))
    np.testing.assert_array_equal(cfg.initial_request(), psi)
    assert "sha256" in cfg.physics()["run.initial"]
    np.save(path, 2 * psi)
    with pytest.raises(InputError, match="run.initial: .*not normalised"):
        parse_config(with_(run__initial_vector=str(path), run__initial=None))


@pytest.mark.parametrize("changes, words", [
    ({"chain__n_thermal": -0.5}, "chain.n_thermal must be non-negative"),
    ({"chain__temperature": 1.0}, "omega0"),
    ({"chain__kappa": [1, 2, 3]}, "one value per domain"),
    ({"chain__schedule": {"factors": [[1], [0]]}}, "intervals"),
    ({"chain__schedule": {"switch_times": [1.0], "factor": [[1], [0]]}}, "chain.schedule must be a table"),
    ({"chain__schedule": {"switch_times": [1.0], "factors": [[1], [0, 1]]}}, "same length"),
    ({"run__initial": ["up:9", 0]}, "run.initial: .*k spins up"),
    ({"run__initial": [1.5, 0]}, r"run.initial\[0\]"),
    ({"run__initial": ["sideways", 0]}, "unknown request"),
    ({"run__observables": ["energy"]}, "unknown observable"),
    ({"run__observables": ["log_negativity"]}, "density matrix"),
    ({"run__initial_vector": "missing.npy"}, "run.initial_vector: cannot read"),
])
def test_bad_physics_keys_are_refused_in_one_line(changes, words):
    with pytest.raises(InputError, match=words):
        parse_config(with_(**changes))


def test_shipped_physics_configs():
    hot = load_config(CONFIGS / "figS1b.toml")
    assert hot.chain().n_thermal.tolist() == pytest.approx([2.8588, 2.8588], abs=1e-4)
    route = load_config(CONFIGS / "route.toml")
    assert route.chain().schedule.factors.tolist() == [[1, 0], [0, 1]]
    assert route.basis_initial is None and route.initial_request()[0] == "up:6"


def test_method_key():
    assert parse_config(base()).method == "auto"
    assert parse_config(with_(run__method="krylov")).method == "krylov"
    with pytest.raises(InputError, match="run.method must be one of"):
        parse_config(with_(run__method="fast"))
