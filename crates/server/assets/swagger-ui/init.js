// Starts Swagger UI on the digibank OpenAPI document. Kept out of index.html so the page needs
// no inline script. /openapi.json is public; every operation needs an API key, which the
// Authorize button takes (scheme `api_key`, HTTP bearer) and keeps in this browser's storage.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  persistAuthorization: true,
  tryItOutEnabled: true,
  displayRequestDuration: true,
  filter: true,
  // No badge from the public validator: nothing leaves this server.
  validatorUrl: null,
});
