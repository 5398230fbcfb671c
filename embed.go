// Package supportbridge carries the files that belong to the whole service rather than to
// one package, such as the HTTP contract, so the binary can serve them.
package supportbridge

import "embed"

// OpenAPI is openapi.yaml, the HTTP contract; GET /openapi.yaml serves it.
//
//go:embed openapi.yaml
var OpenAPI []byte

// SiteAdmin is web/site-admin: the customer's Support access page (page.html, a template the
// server fills) and the script and style files it loads.
//
//go:embed web/site-admin/page.html web/site-admin/*.js web/site-admin/*.css
var SiteAdmin embed.FS

// ErrorCapture is web/error-capture: the script the apps' pages include to capture browser
// errors and send them to POST /api/v1/errors.
//
//go:embed web/error-capture/error-capture.js
var ErrorCapture embed.FS

// ReportWidget is web/report-widget: the "Report a problem" dialog page of the Connect app
// (dialog.html, a template the server fills) and the widget's script and style files.
//
//go:embed web/report-widget/dialog.html web/report-widget/*.js web/report-widget/*.css
var ReportWidget embed.FS
