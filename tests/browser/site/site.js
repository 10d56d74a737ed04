// The tracking code a web site would have: Segment's browser library, pointed at leadscore.
// window.leadscoreConfig (written by the test's static server): writeKey, leadscore (base
// URL), and optionally batching (the library's batching delivery strategy) and cdnSettings
// (settings given inline, so the library does not fetch them).
(function () {
  const config = window.leadscoreConfig;
  const server = new URL(config.leadscore);
  const segmentio = { apiHost: server.host + "/v1", protocol: server.protocol.replace(":", "") };
  if (config.batching) {
    segmentio.deliveryStrategy = { strategy: "batching", config: { size: 10, timeout: 100 } };
  }
  const settings = { writeKey: config.writeKey, cdnURL: config.leadscore };
  if (config.cdnSettings) {
    settings.cdnSettings = config.cdnSettings;
  }
  const analytics = AnalyticsNext.AnalyticsBrowser.load(settings, { integrations: { "Segment.io": segmentio } });
  window.analytics = analytics;
  window.deliveryErrors = [];
  analytics.on("error", (error) => window.deliveryErrors.push(String(error && error.code)));
  window.loaded = analytics.then(
    () => "loaded",
    (error) => "failed: " + (error && error.message),
  );
  // settles once the library has sent the page view (or queued it for a retry)
  window.pageview = analytics.page().then(() => "sent");

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("demo");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const email = String(data.get("email")).trim().toLowerCase();
      await analytics.identify(email, { email, name: data.get("name"), title: data.get("title") });
      await analytics.track("Demo Requested", { form: "pricing-demo" });
      document.getElementById("thanks").hidden = false;
    });
  });
})();
