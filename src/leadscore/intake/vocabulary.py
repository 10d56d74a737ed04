"""Word lists and weights behind the synthetic data of :mod:`leadscore.intake.generate`."""

from __future__ import annotations

COMPANY_PREFIXES = (
    "Acme", "Nova", "Blue", "Hexa", "Orbit", "Lumen", "Vertex", "Pixel", "Atlas", "Kappa",
    "Cobalt", "Nimbus", "Quartz", "Helio", "Zenith", "Alto", "Boreal", "Cedar", "Delta", "Ember",
    "Fjord", "Granite", "Harbor", "Iris", "Jade", "Koala", "Lynx", "Mistral", "Nordic", "Opal",
)  # fmt: skip
COMPANY_SUFFIXES = (
    "Labs", "Systems", "Soft", "Analytics", "Group", "Industries", "Health", "Pay", "Retail",
    "Works", "Cloud", "Logistics", "Bank", "Learning", "Robotics", "Foods", "Energy", "Media",
)  # fmt: skip
COUNTRIES = (("FR", 0.30), ("DE", 0.15), ("US", 0.25), ("GB", 0.12), ("ES", 0.08), ("IT", 0.05), ("NL", 0.05))
COUNTRY_TLD = {"FR": "fr", "DE": "de", "US": "com", "GB": "co.uk", "ES": "es", "IT": "it", "NL": "nl"}
INDUSTRIES = (
    ("software", 0.22), ("fintech", 0.10), ("retail", 0.14), ("education", 0.09), ("manufacturing", 0.15),
    ("healthcare", 0.10), ("logistics", 0.07), ("media", 0.06), ("public sector", 0.04), ("energy", 0.03),
)  # fmt: skip
FIRST_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Hugo", "Lucas", "Louis", "Jules", "Thomas",
    "Nicolas", "Julie", "Sophie", "Anna", "Lena", "Jonas", "Lukas", "Felix", "Emma", "Olivia",
    "James", "Oliver", "Amelia", "Harry", "Jack", "Lucía", "Mateo", "Sofía", "Pablo", "Martina",
    "Giulia", "Marco", "Sanne", "Daan", "Noah", "Mia", "Ethan", "Ava", "Liam", "Zoé",
)  # fmt: skip
LAST_NAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Smith", "Jones", "Taylor", "Brown",
    "Williams", "Wilson", "García", "Fernández", "López", "Martínez", "Rossi", "Russo", "Ferrari",
    "de Jong", "Jansen", "Johnson", "Miller", "Davis", "Lefèvre", "Garnier", "Faure", "Roux", "Blanc",
)  # fmt: skip
FREE_EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "orange.fr", "gmx.de")
TITLES = (
    ("CEO", 0.03), ("CTO", 0.02), ("CFO", 0.015), ("COO", 0.01), ("Founder & CEO", 0.01),
    ("VP Sales", 0.02), ("VP Marketing", 0.02), ("VP Engineering", 0.015),
    ("Head of Growth", 0.02), ("Head of Data", 0.015), ("Head of Marketing", 0.02),
    ("Director of Marketing", 0.03), ("Sales Director", 0.02), ("IT Director", 0.02),
    ("Directeur Commercial", 0.02), ("Directeur Marketing", 0.015), ("Directrice des ventes", 0.01),
    ("Marketing Manager", 0.08), ("Product Manager", 0.06), ("Sales Manager", 0.05),
    ("Chef de projet", 0.04), ("Chargée de marketing", 0.04), ("Consultant", 0.05),
    ("Software Engineer", 0.10), ("Data Engineer", 0.04), ("Développeur", 0.04), ("Analyst", 0.05),
    ("Account Executive", 0.04), ("Student", 0.06), ("Intern", 0.04), ("Stagiaire", 0.02),
)  # fmt: skip
EVENT_MIX = (
    ("page", 0.42), ("Email Opened", 0.28), ("Email Link Clicked", 0.08), ("Form Submitted", 0.04),
    ("Webinar Attended", 0.02), ("Video Playback Completed", 0.05), ("Demo Requested", 0.004),
    ("Meeting Booked", 0.003), ("Live Chat Conversation Started", 0.02), ("Unsubscribed", 0.01),
)  # fmt: skip
PAGES = (
    ("/", 0.14), ("/pricing", 0.09), ("/product", 0.10), ("/product/scoring", 0.06),
    ("/product/integrations", 0.04), ("/docs", 0.07), ("/docs/api", 0.04), ("/blog", 0.08),
    ("/blog/lead-scoring-101", 0.06), ("/blog/mql-vs-sql", 0.05), ("/blog/decay-explained", 0.04),
    ("/customers", 0.04), ("/careers", 0.05), ("/about", 0.03), ("/contact", 0.03),
    ("/webinars", 0.02), ("/demo", 0.02), ("/legal/privacy", 0.0100),
)  # fmt: skip
PAGE_TITLES = (
    ("/", "Home"), ("/pricing", "Pricing"), ("/product", "Product"), ("/product/scoring", "Lead scoring"),
    ("/product/integrations", "Integrations"), ("/docs", "Documentation"), ("/docs/api", "API reference"),
    ("/blog", "Blog"), ("/blog/lead-scoring-101", "Lead scoring 101"), ("/blog/mql-vs-sql", "MQL vs SQL"),
    ("/blog/decay-explained", "Score decay explained"), ("/customers", "Customers"), ("/careers", "Careers"),
    ("/about", "About us"), ("/contact", "Contact"), ("/webinars", "Webinars"), ("/demo", "Book a demo"),
    ("/legal/privacy", "Privacy policy"),
)  # fmt: skip
CAMPAIGN_TAGS = (
    ("google", "cpc", "brand-search"),
    ("linkedin", "paid-social", "abm-q1"),
    ("newsletter", "email", "monthly-digest"),
    ("partner", "referral", "integrations-launch"),
)
"""(source, medium, name) of the campaigns pages may come from."""
CAMPAIGNS = (("0", 0.10), ("1", 0.07), ("2", 0.05), ("3", 0.03), ("none", 0.75))
"""Weights of the campaign tags for page views (the last option: no campaign)."""
EMAIL_CAMPAIGN = ("newsletter", "email", "nurture-sequence")
USER_AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36", 0.45),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", 0.25),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", 0.15),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", 0.11),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.015),
    ("python-requests/2.31.0", 0.01),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0 Safari/537.36", 0.015),
)
PROXY_AGENT = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
"""What an e-mail privacy proxy's open looks like."""
