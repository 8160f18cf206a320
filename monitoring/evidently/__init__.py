"""The drift sidecar: compares a window of the API's prediction log with the champion's training
data using Evidently's Report API, keeps every report and decision, exports Prometheus gauges and
calls the retraining webhook when drift holds in k of the last n windows.

Run it with ``python -m monitoring.evidently --config monitoring/evidently/config.example.yaml``.
"""
