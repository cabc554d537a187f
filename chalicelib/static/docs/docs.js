// Swagger UI over this gateway's /openapi.json, from the same origin only.
//
// The document is fetched relative to this page and given one server: the API base this page is served
// under (e.g. https://…/api behind API Gateway's stage), so "Try it out" calls the right URLs.
// validatorUrl is off: Swagger UI would otherwise load a badge from validator.swagger.io.

const base = new URL(window.location.pathname.replace(/\/docs\/?$/, "/"), window.location.origin);

async function start() {
  const response = await fetch(new URL("openapi.json", base), { cache: "no-store", credentials: "omit" });
  if (!response.ok) throw new Error(`GET openapi.json: HTTP ${response.status}`);
  const spec = await response.json();
  spec.servers = [{ url: base.href.replace(/\/$/, ""), description: "this gateway" }];
  window.ui = window.SwaggerUIBundle({
    spec,
    domNode: document.getElementById("swagger-ui"),
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
    deepLinking: false,
    persistAuthorization: false, // tokens are not written to localStorage
    displayOperationId: false,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: false,
  });
  document.body.dataset.ready = "true";
}

start().catch((error) => {
  document.getElementById("docs-error").textContent = `Could not load the API description: ${error.message}`;
});
