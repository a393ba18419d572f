// Starts ReDoc on /redoc/ (templates/docs/redoc.html) from a file, not an inline script, for
// the CSP (app/csp.py). ReDoc injects its styles as <style> elements; the nonce it is given
// here is the one this page's style-src allows for them.
"use strict";

const container = document.getElementById("redoc-container");
const options = { ...JSON.parse(container.dataset.settings || "{}"), nonce: container.dataset.nonce };
Redoc.init(container.dataset.specUrl, options, container);
