"""The operators' HTTP side: JSON API, Prometheus /metrics, Server-Sent Events and the dashboard."""
