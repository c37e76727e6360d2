/**
 * Face networks on the engine, ported from the TF.js models of the npm package @vladmandic/face-api (its weights,
 * dequantised and cached as safetensors; no TF.js at run time): the SSD MobileNet V1 and Tiny Face Detector
 * detectors, the 68-point landmark network and dlib's ResNet face descriptor.
 */
export * from "./tfjs-weights.js";
export { FACE_API_MEAN_RGB, FaceNetwork, padToSquare, toBatchTensor, samePadding } from "./tf-ops.js";
export { FaceRecognitionNet, FACE_DESCRIPTOR_SIZE } from "./face-recognition.js";
export { FaceLandmark68Net, LANDMARK_INPUT_SIZE } from "./face-landmark68.js";
export { SsdMobilenetV1, SSD_INPUT_SIZE, type FaceBox, type DetectOptions } from "./ssd-mobilenet-v1.js";
export {
  TinyFaceDetector, TINY_FACE_DETECTOR_ANCHORS, TINY_FACE_DETECTOR_INPUT_SIZE, TINY_FACE_DETECTOR_MEAN_RGB, type TinyDetectOptions,
} from "./tiny-face-detector.js";
