package detect

import "fmt"

// Metrics are what `selfsup eval ap` reports: the twelve COCO metrics and
// VOC07 AP50.
type Metrics struct {
	COCOMetrics
	VOC07AP50 float64 `json:"voc07_ap50"`
	Images    int     `json:"images"`
	Boxes     int     `json:"gt_boxes"`
	Dets      int     `json:"detections"`
}

// String is the COCO table followed by the VOC07 line.
func (m *Metrics) String() string {
	return fmt.Sprintf("%s VOC07 11-point AP @[ IoU>0.50 ] = %0.3f\n(%d images, %d ground-truth boxes, %d detections)",
		m.COCOMetrics.String(), m.VOC07AP50, m.Images, m.Boxes, m.Dets)
}

// Evaluate reads a COCO ground-truth file and a COCO results file and
// scores the detections (COCOEval and VOC07AP50).
func Evaluate(gtPath, dtPath string) (*Metrics, error) {
	gt, err := ReadCOCOGroundTruth(gtPath)
	if err != nil {
		return nil, err
	}
	dts, err := ReadDetections(dtPath, gt)
	if err != nil {
		return nil, err
	}
	coco, err := COCOEval(gt, dts)
	if err != nil {
		return nil, err
	}
	voc, err := VOC07AP50(gt, dts)
	if err != nil {
		return nil, err
	}
	return &Metrics{COCOMetrics: *coco, VOC07AP50: voc, Images: len(gt.Images), Boxes: len(gt.Annotations), Dets: len(dts)}, nil
}
