package httpapi

import (
	"encoding/csv"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/lifecycle"
	"github.com/supportbridge/supportbridge/internal/usage"
)

// getStats answers anonymous daily usage counts of [from, to] (UTC dates), of all tenants
// or one: JSON, or CSV (date,kind,count) with Accept: text/csv.
func (s *Server) getStats(c *gin.Context) {
	var fields []FieldError
	day := func(name string) time.Time {
		v := c.Query(name)
		if v == "" {
			fields = append(fields, FieldError{Field: "query:" + name, Message: "is required (YYYY-MM-DD)"})
			return time.Time{}
		}
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			fields = append(fields, FieldError{Field: "query:" + name, Message: "must be a date such as 2026-03-01"})
		}
		return d
	}
	from, to := day("from"), day("to")
	if len(fields) == 0 {
		switch {
		case to.Before(from):
			fields = append(fields, FieldError{Field: "query:to", Message: "must not be before from"})
		case to.Sub(from) >= usage.MaxRange*24*time.Hour:
			fields = append(fields, FieldError{Field: "query:to", Message: "must be within 400 days of from"})
		}
	}
	tenant, hasTenant := c.GetQuery("tenant")
	if hasTenant && (tenant == "" || len(tenant) > maxTenantKey || strings.ContainsFunc(tenant, func(r rune) bool { return r < 0x20 || r == 0x7f })) {
		fields = append(fields, FieldError{Field: "query:tenant", Message: "must be a tenant key of 1 to 256 characters"})
	}
	if len(fields) > 0 {
		writeProblem(c, badRequest("The query is invalid.", fields...))
		return
	}
	if s.dataLife.Usage == nil {
		s.fail(c, unavailable("Usage statistics are not configured on this replica.", 30))
		return
	}
	st, err := usage.Query(c.Request.Context(), s.dataLife.Usage, tenant, from, to)
	if err != nil {
		s.fail(c, err)
		return
	}
	if tenant != "" {
		st.Tenant = lifecycle.KeyHash(tenant)
	}
	if wantsCSV(c.GetHeader("Accept")) {
		c.Header("Content-Type", "text/csv; charset=utf-8")
		c.Status(http.StatusOK)
		w := csv.NewWriter(c.Writer)
		w.Write([]string{"date", "kind", "count"})
		for _, d := range st.Days {
			kinds := make([]string, 0, len(d.Counts))
			for k := range d.Counts {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			for _, k := range kinds {
				w.Write([]string{d.Date, k, strconv.FormatInt(d.Counts[k], 10)})
			}
		}
		w.Flush()
		return
	}
	c.JSON(http.StatusOK, st)
}

// wantsCSV reports whether the Accept header prefers text/csv to JSON.
func wantsCSV(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case "text/csv":
			return true
		case "application/json", "*/*":
			return false
		}
	}
	return false
}
