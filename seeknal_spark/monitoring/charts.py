"""PNG charts of drifted features (baseline vs current shares per bin). matplotlib is imported lazily."""

from __future__ import annotations

import os
from typing import Dict

from seeknal_spark.errors import SeeknalError
from seeknal_spark.monitoring.drift import DriftReport, FeatureDrift

__all__ = ["save_drift_charts"]


def _plot(feature: FeatureDrift, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    xs = range(len(feature.bins))
    width = 0.4
    ax.bar([x - width / 2 for x in xs], feature.baseline_shares, width, label="baseline", color="#4C72B0")
    ax.bar([x + width / 2 for x in xs], feature.current_shares, width, label="current", color="#DD8452")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(feature.bins, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("share of rows")
    ax.set_title(f"{title}: {feature.feature}  (PSI {feature.psi:.3f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_drift_charts(report: DriftReport, directory: str, only_drifted: bool = True) -> Dict[str, str]:
    """Write one PNG per (drifted) feature into ``directory``; returns feature -> path."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise SeeknalError("drift charts need matplotlib: pip install 'seeknal_spark[charts]'") from exc
    os.makedirs(directory, exist_ok=True)
    written: Dict[str, str] = {}
    for feature in report.features:
        if only_drifted and not feature.drifted:
            continue
        path = os.path.join(directory, f"{report.group or 'group'}__{feature.feature}.png")
        _plot(feature, path, report.group)
        written[feature.feature] = path
    report.charts.update(written)
    return written
