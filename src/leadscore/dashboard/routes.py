"""Every router of the dashboard, in one place: ``leadscore serve`` mounts these and the tests
check each of their pages needs a session, so a new page cannot be forgotten by either."""

from __future__ import annotations

from fastapi import APIRouter

from leadscore.dashboard import actions, models_page, reports, settings_page, web

ROUTERS: tuple[APIRouter, ...] = (web.router, reports.router, actions.router, models_page.router, settings_page.router)
