"""Driftwood's monitoring: the Evidently drift sidecar (``monitoring.evidently``) and the
Prometheus, Alertmanager and Grafana provisioning kept next to it."""
