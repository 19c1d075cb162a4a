import pytest

from topodistill.errors import ConfigError
from topodistill.params import section_from_dict


@pytest.mark.parametrize("section,raw,needle", [
    ("distill", {"method": "fitnets"},
     "distill.method: unknown value 'fitnets' (valid: none, fitnet, de, ftd, htd)"),
    ("distill", {"ranking": "rdd"}, "distill.ranking: unknown value 'rdd' (valid: none, rd, rrd)"),
    ("distill", {"model": "gcn"}, "distill.model: unknown value 'gcn' (valid: bpr, lightgcn)"),
    ("teacher", {"num_layers": 0}, "teacher.num_layers: must be > 0"),
    ("distill", {"de": {"num_experts": 0}}, "distill.de.num_experts"),
    ("distill", {"rrd": {"num_uninteresting": -1}}, "distill.rrd.num_uninteresting"),
    ("rank", {"top_n": 0}, "rank.top_n"),
    ("distill", {"student_dim": -3}, "distill.student_dim: must be > 0"),
    ("distill", {"htd": {"group_topology": "ee"}}, "distill.htd.group_topology"),
    ("distill", {"htd": {"assignment": "kmeans", "init_from_clusters": True}}, "init_from_clusters"),
    ("distill", {"lr": "fast"}, "distill.lr: expected a number"),
    ("distill", {"epochs": 2.5}, "distill.epochs: expected an integer"),
    ("teacher", {"dimension": 10}, "teacher: unknown parameter(s) dimension"),
    ("data", {"split": "ratio", "valid_ratio": 0.6, "test_ratio": 0.5}, "must be < 1"),
    ("cluster", {"num_groups": 0}, "cluster.num_groups"),
    ("evaluate", {"ks": []}, "evaluate.ks"),
])
def test_invalid_values_name_the_parameter(section, raw, needle):
    with pytest.raises(ConfigError) as err:
        section_from_dict(section, raw)
    assert needle in str(err.value)


def test_defaults_are_the_paper_protocol():
    d = section_from_dict("distill", {})
    assert (d.student_dim, d.distill_weight, d.lr, d.weight_decay, d.batch_size, d.epochs) == \
        (20, 0.001, 0.001, 0.001, 1024, 100)
    assert (d.htd.alpha, d.htd.group_topology, d.htd.detach_prototypes) == (0.5, "pe", False)
    t = section_from_dict("teacher", {})
    assert t.dim == 200 and t.select == "last"


def test_yaml_strings_for_small_floats_are_accepted():
    assert section_from_dict("distill", {"htd": {"temperature_end": "1e-10"}}).htd.temperature_end == 1e-10
