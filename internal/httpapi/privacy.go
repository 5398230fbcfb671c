package httpapi

import (
	"net/http"
	"net/mail"

	"github.com/gin-gonic/gin"
)

type eraseBody struct {
	AccountID *string `json:"accountId"`
	Email     *string `json:"email"`
}

// privacyErase removes what the service holds about one person and says what it found.
func (s *Server) privacyErase(c *gin.Context) {
	ctx := c.Request.Context()
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, adminBodyLimit)
	var b eraseBody
	if err := decodeJSON(c.Request.Body, &b); err != nil {
		s.fail(c, err)
		return
	}
	var fields []FieldError
	var accountID, email string
	if b.AccountID != nil {
		accountID = *b.AccountID
		if accountID == "" || len(accountID) > 128 {
			fields = append(fields, FieldError{Field: "/accountId", Message: "must be an Atlassian accountId of 1 to 128 characters"})
		}
	}
	if b.Email != nil {
		email = *b.Email
		if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > 254 {
			fields = append(fields, FieldError{Field: "/email", Message: "must be a plain email address such as ada@example.com"})
		}
	}
	if b.AccountID == nil && b.Email == nil {
		fields = append(fields, FieldError{Field: "/", Message: "give accountId, email or both"})
	}
	if len(fields) > 0 {
		writeProblem(c, badRequest("The erasure request is invalid.", fields...))
		return
	}
	if s.dataLife.Eraser == nil {
		s.fail(c, unavailable("Erasure is not configured on this replica.", 30))
		return
	}
	res, err := s.dataLife.Eraser.Erase(ctx, accountID, email)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.InfoContext(ctx, "privacy_erased", "request_id", requestID(c), "by", agentOf(c).Subject,
		"mappings", res.CustomerMappingsRemoved, "tracking_ids", res.TrackingIDsRemoved, "groups", res.ErrorGroupsRemoved)
	c.JSON(http.StatusOK, res)
}
