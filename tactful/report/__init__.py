"""Measurement: treated vs holdout per segment, with intervals, churn and charts."""

from tactful.report.build import ReportError, build_report, report_json
from tactful.report.html import render_html

__all__ = ["ReportError", "build_report", "render_html", "report_json"]
