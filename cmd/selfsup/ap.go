package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/selfsup/selfsup/eval/detect"
)

func apCommand() *cli.Command {
	return &cli.Command{
		Name: "ap",
		Usage: "score detections against COCO ground truth: the twelve COCO box metrics as pycocotools computes them " +
			"(AP .50:.95, AP50, AP75, AP small/medium/large, AR 1/10/100, AR small/medium/large) and VOC07 11-point AP50",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "gt", Required: true, Usage: "COCO instances JSON: images, annotations (bbox [x,y,w,h], category_id, iscrowd, area), categories"},
			&cli.StringFlag{Name: "dt", Required: true, Usage: "COCO results JSON: a list of {image_id, category_id, bbox [x,y,w,h], score}"},
			jsonFlag,
		},
		Action: func(c *cli.Context) error {
			res, err := detect.Evaluate(c.String("gt"), c.String("dt"))
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stderr, res)
			return jsonOut(c, res)
		},
	}
}
