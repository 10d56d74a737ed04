"""The dashboard: server-rendered pages for marketing and sales, in English and French, served
by ``leadscore serve`` beside the API (see :mod:`leadscore.dashboard.web`)."""
