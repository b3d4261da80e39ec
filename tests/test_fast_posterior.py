"""The plumbing tests' fast posterior takes effect where settings are defaulted, and only there."""

from __future__ import annotations

import dataclasses

from tests.conftest import FastPosteriorSettings, beta_scores

from assay import PosteriorSettings, calibration


def test_the_fixture_replaces_only_the_default(fast_posterior: type[PosteriorSettings]) -> None:
    y, p = beta_scores(400, seed=3, exponent=1.3)
    report = calibration(y, p)
    assert report.settings == FastPosteriorSettings()
    assert report.settings.draws < PosteriorSettings().draws
    assert report.posterior is not None and len(report.posterior.samples) == report.settings.draws
    given = PosteriorSettings(draws=600)
    assert calibration(y, p, settings=given).settings is given


def test_without_the_fixture_the_library_default_holds() -> None:
    y, p = beta_scores(400, seed=3, exponent=1.3)
    assert calibration(y, p).settings == PosteriorSettings()


def test_fast_settings_differ_only_in_grid_sizes_and_draws() -> None:
    """The priors are the library's: only the resolution of the computation is lower."""
    fast = dataclasses.asdict(FastPosteriorSettings())
    full = dataclasses.asdict(PosteriorSettings())
    changed = {name for name in full if fast[name] != full[name]}
    assert changed <= {"tau_points", "hyper_points", "spike_points", "quadrature_nodes", "draws"}
