package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// PreviewJob reads the first rows of the job's file and shows each raw and
// transformed: one cell per mapped attribute with its value as it would be
// stored or why it does not convert, and a row error where the record
// cannot be mapped at all (field count, bad quoting). Problems of the
// mapping itself come as findings; then rows are shown raw only.
func (j *jobService) PreviewJob(ctx context.Context, req *intakev1.PreviewJobRequest) (*intakev1.PreviewJobResponse, error) {
	s := j.s
	n, err := rowCount("rows", req.GetRows(), defaultPreviewRows, maxPreviewRows)
	if err != nil {
		return nil, err
	}
	sub, err := s.resolveSubject(ctx, req.GetName(), req.GetJob(), true)
	if err != nil {
		return nil, err
	}
	smp, err := s.readSample(ctx, sub.job, n)
	if err != nil {
		return nil, err
	}
	plan, findings, err := compile(sub, smp)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "compile the mapping: %v", err)
	}
	resp := &intakev1.PreviewJobResponse{Header: smp.header, Findings: findings, Detected: smp.detected}
	if plan != nil {
		resp.Attributes = plan.Attributes()
	}
	for _, r := range smp.rows {
		pr := &intakev1.PreviewRow{Row: r.row, Raw: r.fields, Error: r.err}
		if plan != nil && r.err == "" {
			cells, rerr := plan.Preview(r.row, r.fields)
			if rerr != nil {
				pr.Error = rerr.Reason
			}
			for _, c := range cells {
				pr.Cells = append(pr.Cells, c.Proto())
			}
		}
		resp.Rows = append(resp.Rows, pr)
	}
	return resp, nil
}
