// Starts Swagger UI on /docs. A file, not an inline script, so /docs keeps a strict CSP.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: new URL(root.getAttribute("data-spec"), document.baseURI).href,
    domNode: root,
    deepLinking: true,
    // The default validator badge asks a third-party server to judge the document.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
