package httpapi

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/supportbridge/supportbridge/internal/consent"
)

// accessRequestBody is the JSON an agent posts. Times are strings so a bad one is reported on
// its own field rather than as a malformed document.
type accessRequestBody struct {
	TicketKey    string   `json:"ticketKey"`
	Reason       string   `json:"reason"`
	Streams      []string `json:"streams"`
	From         string   `json:"from"`
	To           string   `json:"to"`
	PersonalData bool     `json:"personalData"`
	Duration     string   `json:"duration"`
}

// input turns the body into the domain's input. Missing times stay zero: the domain says
// they are required, together with every other missing field.
func (b accessRequestBody) input() (consent.RequestInput, error) {
	in := consent.RequestInput{
		TicketKey: b.TicketKey, Reason: b.Reason, Streams: b.Streams,
		PersonalData: b.PersonalData, Duration: b.Duration,
	}
	var fields []FieldError
	parse := func(field, v string) time.Time {
		if v == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			fields = append(fields, FieldError{Field: field, Message: "must be an RFC 3339 time such as 2026-03-01T12:00:00Z"})
		}
		return t
	}
	in.From = parse("/from", b.From)
	in.To = parse("/to", b.To)
	if len(fields) > 0 {
		return in, badRequest("The access request is invalid.", fields...)
	}
	return in, nil
}

// createAccessRequest asks the customer for access. The answer is the request as stored; the
// consent link goes only to the customer, as a ticket comment, and never appears here.
func (s *Server) createAccessRequest(c *gin.Context) {
	var body accessRequestBody
	if err := decodeJSON(c.Request.Body, &body); err != nil {
		s.fail(c, err)
		return
	}
	in, err := body.input()
	if err != nil {
		s.fail(c, err)
		return
	}
	req, err := s.consent.Service.RequestAccess(c.Request.Context(), actorOf(agentOf(c)), in)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", s.basePath+"/api/v1/access-requests/"+req.ID)
	c.JSON(http.StatusCreated, req)
}

// ticketKeyQuery reads the required ticketKey parameter of the list routes.
func ticketKeyQuery(c *gin.Context) (string, error) {
	key := strings.TrimSpace(c.Query("ticketKey"))
	if key == "" {
		return "", badRequest("Name the ticket.", FieldError{Field: "query:ticketKey", Message: "is required"})
	}
	return key, nil
}

// listAccessRequests lists a ticket's requests. A ticket nobody asked about has none, which
// is an empty list rather than an error.
func (s *Server) listAccessRequests(c *gin.Context) {
	key, err := ticketKeyQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	reqs, err := s.consent.Service.ListRequests(c.Request.Context(), key)
	if err != nil && !errors.Is(err, consent.ErrNotFound) {
		s.fail(c, err)
		return
	}
	if reqs == nil {
		reqs = []consent.AccessRequest{}
	}
	c.JSON(http.StatusOK, gin.H{"requests": reqs})
}

func (s *Server) getAccessRequest(c *gin.Context) {
	req, err := s.consent.Service.GetRequest(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, req)
}

// cancelAccessRequest withdraws a pending request; a decided one answers 409.
func (s *Server) cancelAccessRequest(c *gin.Context) {
	if err := s.consent.Service.CancelRequest(c.Request.Context(), actorOf(agentOf(c)), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) listGrants(c *gin.Context) {
	key, err := ticketKeyQuery(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	grants, err := s.consent.Service.ListGrants(c.Request.Context(), key)
	if err != nil && !errors.Is(err, consent.ErrNotFound) {
		s.fail(c, err)
		return
	}
	if grants == nil {
		grants = []consent.Grant{}
	}
	c.JSON(http.StatusOK, gin.H{"grants": grants})
}

// revokeGrant ends a grant. The domain decides who may: the agent who holds it, or an admin.
func (s *Server) revokeGrant(c *gin.Context) {
	if err := s.consent.Service.RevokeGrant(c.Request.Context(), actorOf(agentOf(c)), c.Param("id")); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// ticketEvidence returns the evidence pack of a ticket as one JSON document: what an agent
// hands a customer or an auditor who asks what happened to the logs.
func (s *Server) ticketEvidence(c *gin.Context) {
	ev, err := s.consent.Service.Evidence(c.Request.Context(), c.Param("key"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, ev)
}
