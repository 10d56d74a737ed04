"""The REST API under ``/api`` (Bearer API keys with roles; see docs/api.md): one router per
resource, gathered in :data:`router`."""

from __future__ import annotations

from fastapi import APIRouter

from leadscore.api.rest import (accounts, attribution, backtest, contacts, keys, leads, lifecycle, models, predictive, reports,
                                routing, scores)

router = APIRouter()
for _resource in (contacts, scores, lifecycle, leads, accounts, backtest, models, predictive, keys, reports, attribution, routing):
    router.include_router(_resource.router)

__all__ = ["router"]
