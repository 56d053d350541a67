"""Every published number in cnnlab/data/facts.toml against a second statement of it.

A second statement is another table of the same paper, another paper, the calculator's count
of our spec (within the paper's rounding), or the checksums table Keras downloads against.
`SECOND_STATEMENTS` names, for every fact, the test that checks it, or why none exists; a
fact added to the file without one fails `test_every_fact_is_checked_or_says_why_not`.
"""

from __future__ import annotations

import importlib
import math
import sys

import pytest

from cnnlab import facts
from cnnlab.facts import fact
from cnnlab.nets import builders as A

ARCH = "tests/test_architectures.py::"
NONE = "none: "  # a fact with no second statement: why

SECOND_STATEMENTS = {
    "lenet5.mnist_test_error": NONE + "only Section III.B gives it",
    "lenet5.layer_params": "test_lenet5_layer_params_are_our_spec_with_the_papers_c3_and_pools",
    "alexnet.top5_error": "test_alexnet_table_2_and_the_abstract",
    "alexnet.ilsvrc_top5_error": "test_alexnet_table_2_and_the_abstract",
    "alexnet.ilsvrc_top5_error_abstract": "test_alexnet_table_2_and_the_abstract",
    "alexnet.params": "test_reported_parameter_counts_are_our_specs_rounded",
    "alexnet.relu_speedup": NONE + "Section 3.1 measures it on CIFAR-10, once",
    "alexnet.gpu_memory_gb": NONE + "the GTX 580's memory, given in Section 3.2 only",
    "alexnet.lrn": NONE + "Section 3.3 only; " + ARCH + "test_one_alexnet_lrn_from_the_papers_constants",
    "alexnet.lrn_top5_gain": NONE + "Section 3.3 only",
    "alexnet.augmentation": "test_alexnet_augmentation_factor_is_its_crop_count",
    "googlenet.top5_error": "test_googlenet_errors_as_the_resnet_paper_lists_them",
    "googlenet.ilsvrc_top5_error": "test_googlenet_errors_as_the_resnet_paper_lists_them",
    "googlenet.table1_params": "test_reported_parameter_counts_are_our_specs_rounded",
    "googlenet.table1_ops": ARCH + "test_googlenet_module_ops_match_paper_table_1",
    "googlenet.budget_gmacs": ARCH + "test_googlenet_shapes_and_budget",
    "resnet34.top5_error": "test_resnet_top5_errors_fall_with_depth_in_tables_3_and_4",
    "resnet50.top5_error": "test_resnet_top5_errors_fall_with_depth_in_tables_3_and_4",
    "resnet101.top5_error": "test_resnet_top5_errors_fall_with_depth_in_tables_3_and_4",
    "resnet152.top5_error": "test_resnet_top5_errors_fall_with_depth_in_tables_3_and_4",
    "resnet152.ilsvrc_top5_error": "test_resnet_ensemble_in_table_5_and_the_abstract",
    "resnet152.ilsvrc_top5_error_abstract": "test_resnet_ensemble_in_table_5_and_the_abstract",
    "resnet.table4_top5_error": "test_resnet_top5_errors_fall_with_depth_in_tables_3_and_4",
    "resnet.table2_top1_error": "test_resnet_table_2_is_table_3s_rows",
    "resnet.table3_top1_error": "test_resnet_table_2_is_table_3s_rows",
    "resnet.table3_googlenet_top5_error": "test_googlenet_errors_as_the_resnet_paper_lists_them",
    "resnet.table5_googlenet_top5_error": "test_googlenet_errors_as_the_resnet_paper_lists_them",
    "resnet.flops": ARCH + "test_resnet_flops_match_paper_table_1",
    "resnet.keras_params_millions": "test_reported_parameter_counts_are_our_specs_rounded",
    "resnet.vgg16_flops": "test_vgg16_multiply_adds_as_the_resnet_paper_gives_them",
    "resnet.torchvision_params": ARCH + "test_resnet_without_conv_bias_matches_published_torchvision_counts",
    "vgg16.params_millions": "test_reported_parameter_counts_are_our_specs_rounded",
    "inception_v3.weights_bytes": "test_weight_file_sizes_are_the_downloads_keras_checks",
    "inception_v3.keras_params_millions": "test_weight_files_hold_float32_parameters",
    "inception_v3.keras_size_mb": "test_weight_file_sizes_are_the_downloads_keras_checks",
}


def _round_to(x: float, digits: int) -> float:
    """x to `digits` significant figures: how a paper rounds a count it states."""
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def test_every_fact_is_checked_or_says_why_not():
    assert set(SECOND_STATEMENTS) == set(facts.all_facts())
    for key, check in SECOND_STATEMENTS.items():
        if check.startswith(NONE):
            assert len(check) > len(NONE) + 10, f"{key}: say why there is no second statement"
            continue
        module, _, name = check.rpartition("::")
        target = (importlib.import_module(module.removesuffix(".py").replace("/", "."))
                  if module else sys.modules[__name__])
        assert callable(getattr(target, name, None)), f"{key}: no test {check}"


def test_every_fact_cites_a_table_or_section():
    for key, f in facts.all_facts().items():
        assert f.where and f.what and f.source.cite, key
        assert f.citation == f"{f.source.cite}, {f.where}", key


def test_unknown_fact_is_a_one_line_error():
    with pytest.raises(facts.UnknownFact, match="no fact 'alexnet.nope' in facts.toml"):
        fact("alexnet.nope")
    with pytest.raises(facts.UnknownFact, match="no source"):
        facts.source("nobody1999")


def test_a_fact_without_its_source_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "facts.toml"
    bad.write_text('[sources.a]\ncite = "A 2000"\nauthors = "A"\ntitle = "t"\nvenue = "v"\n'
                   'year = 2000\n\n[x.y]\nvalue = 1\nunit = ""\nwhat = "w"\nsource = "b"\n'
                   'where = "Table 1"\n')
    monkeypatch.setattr(facts, "FACTS_PATH", bad)
    facts._load.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"\[x.y\] cites unknown source 'b'"):
            fact("x.y")
        bad.write_text(bad.read_text().replace('source = "b"\n', ""))
        facts._load.cache_clear()
        with pytest.raises(ValueError, match=r"\[x.y\] must have exactly the fields"):
            fact("x.y")
    finally:
        facts._load.cache_clear()


# ------------------------------------------------------------------------------ LeNet-5


def test_lenet5_layer_params_are_our_spec_with_the_papers_c3_and_pools():
    paper = fact("lenet5.layer_params").value
    net = A.lenet5()
    stats = {s.name: s for s in net.stats().layers}
    specs = {s.name: s for s in net.layers}
    for name in ("C1", "C5", "F6"):  # the layers our spec builds as the paper does
        assert paper[name] == stats[name].params, name
    # C3 (Table I): 6 maps read 3 of S2's maps, 9 read 4, 1 reads all 6; ours reads all 6
    c3 = specs["C3"]
    kernel = c3.kernel[0] * c3.kernel[1]
    assert paper["C3"] == kernel * (6 * 3 + 9 * 4 + 1 * 6) + c3.filters
    # S2, S4: one trainable coefficient and one bias per map; ours are plain average pools
    assert paper["S2"] == 2 * stats["S2"].output_shape[-1]
    assert paper["S4"] == 2 * stats["S4"].output_shape[-1]
    assert stats["S2"].params == stats["S4"].params == 0
    # the paper's trainable total: ours with its C3 and pools, without our softmax layer
    # (its RBF output units are set by hand)
    total = (net.stats().total_params - stats["C3"].params + paper["C3"] + paper["S2"]
             + paper["S4"] - stats["output"].params)
    assert sum(paper.values()) == total


# ------------------------------------------------------------------------------ AlexNet


def test_alexnet_table_2_and_the_abstract():
    assert fact("alexnet.ilsvrc_top5_error").value == fact("alexnet.ilsvrc_top5_error_abstract").value
    # the ensemble of 7 beats one CNN, in the same table
    assert fact("alexnet.ilsvrc_top5_error").value < fact("alexnet.top5_error").value


def test_alexnet_augmentation_factor_is_its_crop_count():
    crops = fact("alexnet.augmentation").value
    # every position of the crop in the image, each also mirrored
    assert crops["factor"] == (crops["image"] - crops["crop"]) ** 2 * 2


# ------------------------------------------------------------------------------ GoogLeNet


def test_googlenet_errors_as_the_resnet_paper_lists_them():
    assert fact("googlenet.top5_error").value == fact("resnet.table3_googlenet_top5_error").value
    # The ResNet paper's Table 5 gives the ILSVRC-2014 entry as 6.66, the GoogLeNet paper
    # 6.67: the same result rounded differently.
    assert fact("googlenet.ilsvrc_top5_error").value == pytest.approx(
        fact("resnet.table5_googlenet_top5_error").value, abs=0.01 + 1e-9)


# ------------------------------------------------------------------------------ parameter counts


def test_reported_parameter_counts_are_our_specs_rounded():
    # "60 million": one significant figure
    alexnet = A.alexnet().stats().total_params
    assert _round_to(alexnet, 1) == fact("alexnet.params").value
    # VGG-16 "138" million (Table 2), keras.io's ResNets in millions to one decimal
    assert round(A.network("vgg16").stats().total_params / 1e6) == \
        fact("vgg16.params_millions").value
    for depth, millions in fact("resnet.keras_params_millions").value.items():
        assert round(A.resnet(depth).stats().total_params / 1e6, 1) == millions, depth
    # GoogLeNet: the page's "about 6.8 million" is the sum of Table 1's params column, whose
    # entries are rounded (and some a few percent off the layer sizes in the same table), so
    # our count of the table's layers agrees with the sum only within 5%.
    table = fact("googlenet.table1_params").value
    assert A.googlenet().stats().total_params == pytest.approx(1000 * sum(table.values()),
                                                               rel=0.05)


# ------------------------------------------------------------------------------ ResNet


def test_resnet_top5_errors_fall_with_depth_in_tables_3_and_4():
    depths = [d for d in A.RESNET_UNITS if f"resnet{d}.top5_error" in facts.all_facts()]
    assert depths == [34, 50, 101, 152]
    table3 = [fact(f"resnet{d}.top5_error").value for d in depths]
    table4 = [fact("resnet.table4_top5_error").value[d] for d in depths]
    assert table3 == sorted(table3, reverse=True) and len(set(table3)) == 4  # 152 < 101 < 50 < 34
    assert table4 == sorted(table4, reverse=True)
    # Table 4's multi-scale testing beats Table 3's 10 crops for every depth
    assert all(t4 < t3 for t3, t4 in zip(table3, table4, strict=True))


def test_resnet_ensemble_in_table_5_and_the_abstract():
    ensemble = fact("resnet152.ilsvrc_top5_error")
    assert ensemble.value == fact("resnet152.ilsvrc_top5_error_abstract").value
    assert ensemble.value < min(fact("resnet.table4_top5_error").value.values())


def test_resnet_table_2_is_table_3s_rows():
    table2 = fact("resnet.table2_top1_error").value
    table3 = fact("resnet.table3_top1_error").value
    assert table2["plain34"] == table3["plain34"]
    assert table2["resnet34"] == table3["resnet34_A"]  # Table 2's ResNets are option A
    # the degradation problem, and residual learning solving it
    assert table2["plain34"] > table2["plain18"]
    assert table2["resnet34"] < table2["resnet18"]


def test_vgg16_multiply_adds_as_the_resnet_paper_gives_them():
    macs = A.network("vgg16").stats().total_macs
    assert macs / 1e9 == pytest.approx(fact("resnet.vgg16_flops").value, rel=0.03)


# ------------------------------------------------------------------------------ Inception v3 weights


def test_weight_file_sizes_are_the_downloads_keras_checks():
    from cnnlab.vision.inception import WEIGHTS_FILES

    sizes = fact("inception_v3.weights_bytes").value
    # the table the download is fetched and MD5-checked against
    assert WEIGHTS_FILES[True].approx_bytes == sizes["top"]
    assert WEIGHTS_FILES[False].approx_bytes == sizes["notop"]
    assert fact("inception_v3.weights_bytes").source.title.replace("[_notop]", "") == \
        WEIGHTS_FILES[True].fname
    # keras.io's "MB" are MiB of the file with the classifier
    assert round(sizes["top"] / 2**20) == fact("inception_v3.keras_size_mb").value
    # the classifier (2048 x 1000 + 1000 float32) is the difference between the files
    assert sizes["top"] - sizes["notop"] == pytest.approx(4 * (2048 * 1000 + 1000), rel=0.01)


def test_weight_files_hold_float32_parameters():
    # keras.io's 23.9M parameters, 4 bytes each, plus the HDF5 layout (names, attributes): < 1%
    sizes = fact("inception_v3.weights_bytes").value
    params = fact("inception_v3.keras_params_millions").value * 1e6
    assert sizes["top"] == pytest.approx(4 * params, rel=0.01)
    assert sizes["top"] > 4 * params


@pytest.mark.slow
def test_weight_file_sizes_match_keras_inception_v3_parameter_counts():
    import keras

    sizes = fact("inception_v3.weights_bytes").value
    for include_top, key in ((True, "top"), (False, "notop")):
        params = keras.applications.InceptionV3(weights=None, include_top=include_top).count_params()
        assert 4 * params < sizes[key] < 4 * params * 1.01, key
        if include_top:
            assert round(params / 1e6, 1) == fact("inception_v3.keras_params_millions").value
