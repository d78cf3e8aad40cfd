"""srs-agents: small daemons that run beside the SRS live-streaming server in Kubernetes."""

__version__ = "0.1.0"
