// The built-in default for `ditrun run` without a model: the tiny Flux preset with
// deterministic weights (synth seed 0) and a deterministic conditioning file, made on the fly
// in a private temporary folder that is removed when this object goes away. It lets a fresh
// machine render something end to end with no downloads.
#pragma once

#include <string>

namespace ditrun::launcher {

class BuiltinModel {
 public:
  BuiltinModel();
  ~BuiltinModel();
  BuiltinModel(const BuiltinModel&) = delete;
  BuiltinModel& operator=(const BuiltinModel&) = delete;

  const std::string& model_path() const { return model_; }
  const std::string& cond_path() const { return cond_; }  // txt [16, ctx] and y [vec]

 private:
  std::string dir_, model_, cond_;
};

}  // namespace ditrun::launcher
