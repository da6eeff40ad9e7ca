"""Example FastAPI service for fastapi-infra: the contract a service must meet."""
