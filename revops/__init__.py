"""RevOps Flows: Prefect pipelines that close the gaps between Salesforce and Stripe."""

__version__ = "0.1.0"
