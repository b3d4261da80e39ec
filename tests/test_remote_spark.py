"""The same in-engine BinStats on PySpark local[2] (runs when pyspark and Java are present)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.conftest import (
    AS_OF,
    assert_same_stats,
    make_lake,
    reference_labels,
    usable_reference,
)

from assay import BinStats
from assay.pushdown import binstats, labelled
from assay.pushdown.sources import conform
from assay.stats.binning import quantile_edges, uniform_edges

pyspark_sql = pytest.importorskip("pyspark.sql", reason="install assay[spark] for the Spark check")
ibis = pytest.importorskip("ibis")
pytestmark = [
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java"),
    pytest.mark.integration,  # a JVM: minutes of start-up
]


def test_spark_labels_and_binstats_equal_the_references(tmp_path: Path) -> None:
    predictions, outcomes = make_lake(1500, seed=11, emissions=2)
    pq.write_table(predictions, tmp_path / "predictions.parquet")
    pq.write_table(outcomes, tmp_path / "outcomes.parquet")
    spark = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("assay-test")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        con = ibis.pyspark.connect(spark)
        found = conform(
            con.read_parquet(str(tmp_path / "predictions.parquet")),
            con.read_parquet(str(tmp_path / "outcomes.parquet")),
        )
        labels = labelled(*found, as_of=AS_OF, policy="last").to_pyarrow()
        got = dict(
            zip(
                labels["prediction_id"].to_pylist(),
                zip(labels["label"].to_pylist(), labels["matured"].to_pylist(), strict=True),
                strict=True,
            )
        )
        assert got == reference_labels(predictions, outcomes, AS_OF, "last")
        y, p, _ = usable_reference(predictions, outcomes)
        fixed = binstats(found[0], outcomes=found[1], as_of=AS_OF, edges=uniform_edges(100))
        assert_same_stats(fixed, BinStats.accumulate(y, p, uniform_edges(100)))
        equal_mass = binstats(found[0], outcomes=found[1], as_of=AS_OF, edges=10)
        assert_same_stats(equal_mass, BinStats.accumulate(y, p, quantile_edges(p, 10)))
        assert np.all(np.diff(equal_mass.edges) > 0)
    finally:
        spark.stop()
